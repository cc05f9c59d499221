/**
 * Picks a crypto backend once per process: the platform's WebCrypto one when it passes a
 * known-answer test (an RFC vector), else the reference implementation (tweetnacl). Older
 * browsers lack X25519 / Ed25519 in WebCrypto, or throw on them.
 */
export function nativeOrReference<T>(
  native: T,
  reference: T,
  knownAnswer: (backend: T) => Promise<boolean>,
): () => Promise<T> {
  let chosen: Promise<T> | undefined;
  return () => {
    chosen ??= knownAnswer(native).then(
      (passes) => (passes ? native : reference),
      () => reference,
    );
    return chosen;
  };
}
