// Swagger UI in a real browser: open it on a running gateway, authorize with an API key, run
// "Try it out" on the participants and attendance operations for a demo meeting, and check that
// each answer is a 200 with the people shown. Saves a screenshot of the result.
//
// Usage: node swagger_ui.mjs BASE_URL API_KEY SCREENSHOT.png
// Needs Chromium (Debian's package: /usr/bin/chromium, or CHROMIUM=path) and `npm ci` here.

import { chromium } from "playwright-core";

const [base, key, screenshot] = process.argv.slice(2);
if (!base || !key || !screenshot) {
  console.error("usage: node swagger_ui.mjs BASE_URL API_KEY SCREENSHOT.png");
  process.exit(2);
}
// The recurring demo meeting's second sub-meeting: a few dozen people, Chinese and emoji names.
const MEETING = "100000000000000003";
const SUB_MEETING = "1717000002";
const LIVE_MEETING = "100000000000000001"; // 1,234 records: 13 pages, so 13 deflate runs

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  page.setDefaultTimeout(20_000);
  const failures = [];
  page.on("pageerror", (error) => failures.push(`page error: ${error.message}`));
  // The page must load everything from the gateway and call nothing outside it.
  page.on("request", (request) => {
    if (!request.url().startsWith(`${base}/`)) {
      failures.push(`request outside the gateway: ${request.url()}`);
    }
  });
  page.on("requestfailed", (request) => {
    failures.push(`request failed: ${request.url()} (${request.failure()?.errorText})`);
  });

  await page.goto(`${base}/swagger-ui/`);
  await page.getByRole("heading", { name: /wemeet-gateway/ }).waitFor();

  // Authorize with the bearer key.
  await page.locator(".auth-wrapper button.authorize").click();
  const modal = page.locator(".modal-ux");
  await modal.locator("input").first().fill(key);
  await modal.locator(".auth-btn-wrapper button.authorize").click();
  await modal.getByRole("button", { name: "Close" }).click();

  // Try it out on one operation for the recurring meeting's sub-meeting: the answer shown.
  const tryIt = async (operationId) => {
    const operation = page.locator(`#operations-participants-${operationId}`);
    await operation.locator(".opblock-summary").first().click();
    await operation.getByRole("button", { name: "Try it out" }).click();
    await operation.locator('tr[data-param-name="meeting_id"] input').fill(MEETING);
    await operation.locator('tr[data-param-name="sub_meeting_id"] input').fill(SUB_MEETING);
    await operation.getByRole("button", { name: "Execute" }).click();
    const live = operation.locator(".live-responses-table");
    const status = live.locator(".response .response-col_status").first();
    await status.waitFor();
    const code = (await status.innerText()).trim();
    const body = await live.locator(".response-col_description .microlight").first().innerText();
    if (code !== "200") {
      throw new Error(`${operationId}: expected a 200 from Try it out, got ${code}: ${body.slice(0, 500)}`);
    }
    return { operation, code, shown: JSON.parse(body), body };
  };

  const { operation, code, shown, body } = await tryIt("listParticipants");
  if (shown.meeting_id !== MEETING || !Array.isArray(shown.participants) || shown.participants.length === 0) {
    throw new Error(`the answer shown has no participants: ${body.slice(0, 500)}`);
  }
  const attendance = await tryIt("getAttendance");
  const people = attendance.shown.attendees;
  if (!Array.isArray(people) || people.length === 0 || attendance.shown.summary?.attendees !== people.length) {
    throw new Error(`the attendance shown has no people: ${attendance.body.slice(0, 500)}`);
  }
  const curl = await operation.locator(".curl-command").innerText();
  if (!curl.includes("Authorization: Bearer")) {
    throw new Error(`Swagger UI did not send the key: ${curl}`);
  }
  // Chromium reads a list sent gzip-compressed in chunks (one deflate run per page of records).
  const big = await page.evaluate(async ([key, id]) => {
    const response = await fetch(`/meetings/${id}/participants`, {
      headers: { Authorization: `Bearer ${key}` },
    });
    const list = await response.json();
    // And a view's gzip form: its parts compressed each on their own, read as one document.
    const csv = await fetch(`/meetings/${id}/participants?format=csv`, {
      headers: { Authorization: `Bearer ${key}` },
    });
    const rows = (await csv.text()).split("\r\n");
    return {
      status: response.status,
      encoding: response.headers.get("content-encoding"),
      count: list.participants.length,
      total: list.total_count,
      csvEncoding: csv.headers.get("content-encoding"),
      csvRows: rows.length - 2, // the header, and nothing after the last line end
      csvEnd: rows[rows.length - 1],
    };
  }, [key, LIVE_MEETING]);
  if (big.status !== 200 || big.encoding !== "gzip" || big.count !== big.total || big.count < 1000) {
    throw new Error(`the gzipped live list did not read whole: ${JSON.stringify(big)}`);
  }
  if (big.csvEncoding !== "gzip" || big.csvRows !== big.count || big.csvEnd !== "") {
    throw new Error(`the gzipped CSV did not read whole: ${JSON.stringify(big)}`);
  }
  if (failures.length > 0) {
    throw new Error(failures.join("\n"));
  }

  await operation.locator(".responses-wrapper").scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshot, fullPage: false });
  console.log(
    `swagger-ui: Try it out answered ${code} with ${shown.participants.length} participants ` +
      `and ${people.length} attendees; ` +
      `screenshot in ${screenshot}`,
  );
} finally {
  await browser.close();
}
