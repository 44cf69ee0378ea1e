import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { launchBrowser } from "./support/browser.ts";

describe("browser test support", () => {
  it("says what to install when Chromium is missing", async () => {
    await assert.rejects(launchBrowser({ executablePath: "/nonexistent/chromium" }), /install chromium: apt-get install -y chromium/);
  });

  it("runs Debian's Chromium headless", async () => {
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await page.setContent("<p>hello</p>");
      assert.equal(await page.locator("p").innerText(), "hello");
      assert.match(await page.evaluate("navigator.userAgent") as string, /HeadlessChrome|Chrome/);
    } finally {
      await browser.close();
    }
  });
});
