/** The test page's script: the SDK core, exposed as `globalThis.fedprofile`. */
import * as core from "../../sdk/src/core";

Object.assign(globalThis, { fedprofile: core });
