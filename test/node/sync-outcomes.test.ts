/**
 * `sync()` against a real HTTP coordinator (issue 11): a full round, a coordinator that is down,
 * and one that restarts mid-sync are outcomes, not rejections; a restart shorter than the retry
 * window does not fail the sync. Retry windows are short here; the default is `SYNC_RETRY`.
 */
import { createDeviceClient, createOperatorClient } from "@fedprofile/protocol/client";
import { createProfiler } from "@fedprofile/sdk";
import { createCoordinatorClient, participateInRound, SDK_VERSION } from "@fedprofile/sdk/sync";
import { afterEach, describe, expect, it } from "vitest";
import { type HttpCoordinator, plainActivityRound, startHttpCoordinator } from "./http-coordinator";

const PLAIN_ROUND = plainActivityRound(1);

let coordinator: HttpCoordinator | undefined;
afterEach(async () => {
  await coordinator?.stop();
  coordinator = undefined;
});

/** A device with a short retry window and a fetch that counts attempts. */
function device(c: HttpCoordinator, windowMs: number) {
  const attempts = { count: 0 };
  const profiler = createProfiler({
    endpoint: c.url,
    apiKey: c.keys.publishable.key,
    storage: "memory",
    tcfApi: null,
    // These rounds are plain-sum (the outcome under test is the transport's, not the policy's).
    privacyPolicy: "development",
    syncRetry: { windowMs, baseDelayMs: 40, maxDelayMs: 400 },
    fetch: (input, init) => {
      attempts.count++;
      return fetch(input, init);
    },
  });
  return { profiler, attempts };
}

describe("sync() outcomes over real HTTP", () => {
  it("a round with no room left is round-full", async () => {
    coordinator = await startHttpCoordinator();
    const operator = createOperatorClient({ endpoint: coordinator.url, apiKey: coordinator.keys.secret.key });
    const round = await operator.openRound(PLAIN_ROUND);
    // Plain-sum admits 2 × maxContributions participants: two devices take both places.
    const others = createDeviceClient({
      endpoint: coordinator.url,
      apiKey: coordinator.keys.publishable.key,
      sdkVersion: SDK_VERSION,
    });
    await others.join(round.roundId);
    await others.join(round.roundId);
    const { profiler } = device(coordinator, 1000);
    await profiler.track("Product Viewed", { product_id: "a", price: 2 });
    const outcome = await profiler.sync("activity");
    expect(outcome).toMatchObject({ status: "round-full", roundId: round.roundId });
    await profiler.close();
  });

  it("a coordinator that stays down is unreachable once the retry window has passed", async () => {
    coordinator = await startHttpCoordinator();
    await coordinator.stop();
    const { profiler, attempts } = device(coordinator, 600);
    const started = Date.now();
    const [one, all] = [await profiler.sync("activity"), await profiler.sync()];
    expect(one).toMatchObject({ status: "unreachable" });
    expect(all).toMatchObject({ status: "unreachable" });
    if (one.status === "unreachable") expect(one.reason).toContain(`cannot reach ${coordinator.url}`);
    expect(attempts.count).toBeGreaterThan(2); // retried, with backoff
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    await profiler.close();
  });

  it("a coordinator restart inside the retry window does not fail the sync", async () => {
    coordinator = await startHttpCoordinator();
    const operator = createOperatorClient({ endpoint: coordinator.url, apiKey: coordinator.keys.secret.key });
    const round = await operator.openRound(PLAIN_ROUND);
    const { profiler, attempts } = device(coordinator, 20_000);
    await profiler.track("Product Viewed", { product_id: "a", price: 2 });
    await coordinator.stop();
    const running = coordinator;
    const restart = new Promise<void>((done) => setTimeout(() => void running.start().then(done), 1500));
    const outcome = await profiler.sync("activity");
    await restart;
    expect(outcome).toMatchObject({ status: "contributed", roundId: round.roundId, contributions: 1 });
    expect(attempts.count).toBeGreaterThan(3); // checkin failed while it was down, then join and contribute
    expect((await operator.roundStatus(round.roundId)).contributions).toBe(1);
    await profiler.close();
  });

  it("the device's policy refusing a round is the refused-by-policy outcome, and nothing is sent", async () => {
    coordinator = await startHttpCoordinator();
    const operator = createOperatorClient({ endpoint: coordinator.url, apiKey: coordinator.keys.secret.key });
    const round = await operator.openRound(plainActivityRound(5));
    const client = createCoordinatorClient({
      endpoint: coordinator.url,
      apiKey: coordinator.keys.publishable.key,
    });
    // The production policy refuses a plain-sum round (PolicyRefusedError) before the vector exists.
    let computed = false;
    const outcome = await participateInRound(client, "activity", () => {
      computed = true;
      return Float64Array.of(1, 4);
    });
    expect(outcome).toMatchObject({
      status: "refused-by-policy",
      roundId: round.roundId,
      floors: ["allowPlainSum"],
    });
    expect(computed).toBe(false);
    expect((await operator.roundStatus(round.roundId)).contributions).toBe(0);
  });
});
