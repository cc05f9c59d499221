import { playwright } from "@vitest/browser-playwright";
import { defineConfig } from "vitest/config";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./test/chromium.ts";

/**
 * Four test layers, one runner:
 * - node: unit tests beside the code (`*.test.ts`)
 * - workers: the Worker, Durable Objects and D1 inside real workerd (`edge/vitest.config.ts`)
 * - browser: real Chromium and IndexedDB (`*.browser.test.ts`)
 * - e2e: Playwright drives a served page against a real `wrangler dev` (`*.e2e.test.ts`)
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          environment: "node",
          include: ["{sdk,coordinator,test,examples}/**/*.test.ts"],
          exclude: ["**/node_modules/**", "**/*.browser.test.ts", "**/*.e2e.test.ts", "**/*.workers.test.ts"],
        },
      },
      "./edge/vitest.config.ts",
      {
        test: {
          name: "browser",
          include: ["{sdk,test}/**/*.browser.test.ts"],
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            provider: playwright({
              launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS },
            }),
            instances: [{ browser: "chromium" }],
          },
        },
      },
      {
        test: {
          name: "e2e",
          environment: "node",
          include: ["test/e2e/**/*.e2e.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
