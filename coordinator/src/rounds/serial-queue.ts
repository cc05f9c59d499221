/**
 * Runs async operations one at a time, in call order. Round hosts need it: protocol handlers
 * await WebCrypto and D1, and a Durable Object's input gate lets other requests in meanwhile.
 */
export function createSerialQueue(): <T>(operation: () => Promise<T>) => Promise<T> {
  let queue: Promise<unknown> = Promise.resolve();
  return <T>(operation: () => Promise<T>): Promise<T> => {
    const result = queue.then(operation, operation);
    queue = result.catch(() => undefined);
    return result;
  };
}
