export { buildDashboard, dashboardIsStale, ensureDashboardBuilt, DashboardBuildError, defaultDistDir, type BuildSummary } from "./build.ts";
export { dashboardSite, staticSite, PAGE_HEADERS, type StaticSite, type StaticAnswer } from "./static-site.ts";
