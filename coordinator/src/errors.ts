/** The error classes, defined once in `@fedprofile/protocol/errors` and shared with the SDK. */
export * from "@fedprofile/protocol/errors";
