/**
 * The security headers of every dashboard page: scripts and styles from this origin only, no
 * framing, and no Referer (a sign-in link's one-time code must not leak to another site).
 * Plain data: the local server sends them (static-site.ts), and sst.config.ts has the CloudFront
 * router add them to the site's answers in AWS.
 */
export const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};
