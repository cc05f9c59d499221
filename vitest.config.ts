import { playwright } from "@vitest/browser-playwright";
import { defaultClientConditions, defaultServerConditions } from "vite";
import { defineConfig } from "vitest/config";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./test/chromium.ts";

/**
 * Tests run the workspace packages from `src/`: the `source` export condition (also set for tsc in
 * `tsconfig.base.json`) points there, while published consumers get `dist/`.
 */
export const SOURCE_CONDITIONS = {
  resolve: { conditions: ["source", ...defaultClientConditions] },
  ssr: { resolve: { conditions: ["source", ...defaultServerConditions] } },
};

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
        ...SOURCE_CONDITIONS,
        test: {
          name: "node",
          environment: "node",
          include: ["{sdk,coordinator,cli,test,examples}/**/*.test.ts"],
          exclude: ["**/node_modules/**", "**/*.browser.test.ts", "**/*.e2e.test.ts", "**/*.workers.test.ts"],
        },
      },
      "./edge/vitest.config.ts",
      {
        ...SOURCE_CONDITIONS,
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
        ...SOURCE_CONDITIONS,
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
