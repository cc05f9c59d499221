/**
 * Tells an evicted store from a new one. A browser may delete an origin's IndexedDB on its own:
 * Chromium and Firefox evict whole origins under storage pressure (WHATWG Storage §4.5, "best
 * effort" buckets), and Safari deletes all script-writable storage after 7 days of use without
 * interaction (WebKit, "Full Third-Party Cookie Blocking and More", 2020). A database the open
 * had to create is then indistinguishable from a first visit, so the profile also leaves a
 * stamp outside IndexedDB, in two places that are evicted separately: localStorage (kept when
 * only IndexedDB goes, e.g. a failed or cleared database) and a first-party cookie (kept by
 * pressure eviction, which clears storage buckets, not cookies). The stamp is the constant "1":
 * it says a profile existed on this device, nothing about whom. Where both are gone too (Safari's
 * 7-day rule also caps script-set cookies at 7 days) eviction reads as new; nothing is lost by
 * that but the report.
 */

const cookieName = (dbName: string) => `fedprofile_${dbName.replace(/[^A-Za-z0-9_-]/g, "_")}`;
const storageKey = (dbName: string) => `fedprofile:${dbName}:stored`;
/** 400 days, the longest a cookie may be kept (RFC 6265bis §5.6.2). */
const MAX_AGE_S = 400 * 86_400;

function local(): Storage | null {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null;
  }
}

function cookieJar(): { get(): string; set(value: string): void } | null {
  if (typeof document === "undefined") return null;
  return {
    get: () => {
      try {
        return document.cookie;
      } catch {
        return ""; // sandboxed documents throw on cookie access
      }
    },
    set: (value) => {
      try {
        // biome-ignore lint/suspicious/noDocumentCookie: the Cookie Store API is async (pagehide) and missing in Firefox and Safari before 18.4
        document.cookie = value;
      } catch {
        // as above
      }
    },
  };
}

/** True if a stamp from an earlier stored profile survives outside IndexedDB. */
export function hasStoreMarker(dbName: string): boolean {
  let found = false;
  try {
    found = local()?.getItem(storageKey(dbName)) === "1";
  } catch {
    // unreadable localStorage: the cookie may still say
  }
  const name = cookieName(dbName);
  return found || (cookieJar()?.get().split("; ").includes(`${name}=1`) ?? false);
}

/** Stamps this device as holding a stored profile (call only with storage consent). */
export function setStoreMarker(dbName: string): void {
  try {
    local()?.setItem(storageKey(dbName), "1");
  } catch {
    // quota or denied: the cookie is the other half
  }
  const secure = typeof location !== "undefined" && location.protocol === "https:" ? "; Secure" : "";
  cookieJar()?.set(`${cookieName(dbName)}=1; Max-Age=${MAX_AGE_S}; Path=/; SameSite=Lax${secure}`);
}

/** Removes the stamp (`forget()`, a storage refusal): the next stored profile is new, not evicted. */
export function clearStoreMarker(dbName: string): void {
  try {
    local()?.removeItem(storageKey(dbName));
  } catch {
    // nothing to remove where localStorage is unusable
  }
  cookieJar()?.set(`${cookieName(dbName)}=; Max-Age=0; Path=/; SameSite=Lax`);
}
