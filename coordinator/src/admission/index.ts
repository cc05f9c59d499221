/** Admission by Privacy Pass token: redemption at join, and the storefront's issuer. */
export * from "./issuer";
export * from "./redeem";
