/** Each table with the schema of its items: every read of a table goes through one of these. */
import { defineTable } from "./table.ts";
import {
  AgentClassItem,
  BuildLogItem,
  BuildQueueItem,
  ConnectionItem,
  DashboardSessionItem,
  DeliveryItem,
  DerivationInputItem,
  DerivationItem,
  EdgeItem,
  EffectItem,
  EffectLineItem,
  JobAttributeItem,
  JobDerivationItem,
  JobItem,
  PendingInputItem,
  ReportItem,
  ScheduleItem,
  SessionFields,
  SweeperCursorItem,
  TokenItem,
} from "./items.ts";

export const Jobs = defineTable("Jobs", JobItem);
export const Reports = defineTable("Reports", ReportItem);
export const Deliveries = defineTable("Deliveries", DeliveryItem);
export const Derivations = defineTable("Derivations", DerivationItem);
export const Edges = defineTable("Edges", EdgeItem);
export const PendingInputs = defineTable("PendingInputs", PendingInputItem);
export const DerivationInputs = defineTable("DerivationInputs", DerivationInputItem);
export const JobDerivations = defineTable("JobDerivations", JobDerivationItem);
export const JobAttributes = defineTable("JobAttributes", JobAttributeItem);
export const BuildLogs = defineTable("BuildLogs", BuildLogItem);
export const Effects = defineTable("Effects", EffectItem);
export const EffectLines = defineTable("EffectLines", EffectLineItem);
export const Schedules = defineTable("Schedules", ScheduleItem);
export const BuildQueues = defineTable("BuildQueues", BuildQueueItem);
export const AgentClasses = defineTable("AgentClasses", AgentClassItem);
export const SweeperCursors = defineTable("SweeperCursors", SweeperCursorItem);
export const Tokens = defineTable("Tokens", TokenItem);
export const Connections = defineTable("Connections", ConnectionItem);
/** Sessions without their tasks (flow/sessions.ts reads the whole item, tasks included). */
export const SessionLoads = defineTable("Sessions", SessionFields);
export const DashboardSessions = defineTable("DashboardSessions", DashboardSessionItem);
