/**
 * The shapes the HTTP API answers with, stated once: the API's routes validate and document their
 * responses with these zod schemas (they become /openapi.json), and the dashboard reads the same
 * shapes through `z.infer` types (type-only imports: no zod in the browser bundle). A field added to
 * a response here is seen by both, and a view reading a field the API does not send fails the type
 * check.
 */
import { z } from 'zod';

export const MeSchema = z.object({ username: z.string(), role: z.string(), tokenId: z.string().nullable() });

export const VmSchema = z.object({
  name: z.string(),
  state: z.enum(['running', 'starting', 'pending', 'shed', 'quarantined', 'stopped']),
  host: z.string().nullable(),
  healthy: z.boolean(),
  secondary: z.object({ host: z.string(), synced: z.boolean() }).nullable(),
  waitReason: z.string().nullable(),
  shedReason: z.string().nullable(),
});
export const ServiceSchema = z.object({
  name: z.string(),
  title: z.string(),
  tier: z.string(),
  vendor: z.string(),
  state: z.enum(['up', 'degraded', 'down']),
  lastRtoS: z.number().nullable(),
  vms: z.array(VmSchema),
});
export const ServicesSchema = z.object({ summary: z.object({ up: z.number(), degraded: z.number(), down: z.number() }), services: z.array(ServiceSchema) });

export const TierSchema = z.object({ name: z.string(), rtoS: z.number(), rpoS: z.number(), priority: z.number(), mechanism: z.string() });
export const TiersSchema = z.object({ tiers: z.array(TierSchema) });

export const TopologyHostSchema = z.object({
  name: z.string(),
  room: z.string(),
  rack: z.string(),
  cores: z.number(),
  memoryGiB: z.number(),
  powerFeed: z.string(),
  generator: z.boolean(),
  status: z.string(),
  vcpuUsed: z.number(),
  memoryGiBUsed: z.number(),
  vms: z.array(z.object({ name: z.string(), service: z.string(), tier: z.string() })),
});
export const TopologySchema = z.object({ rooms: z.array(z.string()), racks: z.array(z.object({ name: z.string(), room: z.string() })), hosts: z.array(TopologyHostSchema) });

export const HostSeriesSchema = z.object({
  host: z.string(),
  cores: z.number(),
  planDemandCores: z.array(z.number()),
  nowDemandCores: z.array(z.number()),
  planReadyPercent: z.array(z.number()),
  nowReadyPercent: z.array(z.number()),
});
export const FailureRowSchema = z.object({
  kind: z.string(),
  ids: z.array(z.string()),
  survivable: z.boolean(),
  shed: z.array(z.string()),
  lost: z.array(z.string()),
  late: z.array(z.string()),
  worstRtoEstimateS: z.number(),
});
export const CapacitySchema = z.object({ dayStartMs: z.number(), nowMs: z.number(), hosts: z.array(HostSeriesSchema), failures: z.array(FailureRowSchema) });

export const JournalEntrySchema = z.object({
  seq: z.number().int(),
  atMs: z.number(),
  kind: z.string(),
  type: z.string(),
  subject: z.string(),
  actor: z.string(),
  data: z.record(z.string(), z.unknown()),
  previousHash: z.string(),
  hash: z.string(),
});
export const AuditPageSchema = z.object({ entries: z.array(JournalEntrySchema), nextSeq: z.number().nullable(), length: z.number() });
export const VerdictSchema = z.object({ ok: z.boolean(), checked: z.number(), firstBad: z.object({ seq: z.number(), reason: z.string() }).nullable() });

export const DrillSchema = z.object({
  id: z.string(),
  scenario: z.string(),
  seed: z.number(),
  actor: z.string(),
  status: z.enum(['running', 'finished', 'failed']),
  report: z.unknown().nullable(),
  error: z.string().nullable(),
});

/** One delivery attempt of the notifier (a notify.* journal entry), for the dashboard's delivery log. */
export const DeliverySchema = z.object({
  seq: z.number(),
  atMs: z.number(),
  outcome: z.enum(['sent', 'failed', 'dropped', 'cursor']),
  receiver: z.string(),
  key: z.string().nullable(),
  alert: z.string().nullable(),
  attempt: z.number().nullable(),
  durationMs: z.number().nullable(),
  detail: z.string(),
});
export const DeliveriesSchema = z.object({
  deliveries: z.array(DeliverySchema),
  /** The newest journal entries read to find them (the log is paged by the journal, not scanned whole). */
  scannedFromSeq: z.number(),
});

export type MeDto = z.infer<typeof MeSchema>;
export type VmDto = z.infer<typeof VmSchema>;
export type ServiceDto = z.infer<typeof ServiceSchema>;
export type ServicesDto = z.infer<typeof ServicesSchema>;
export type TierDto = z.infer<typeof TierSchema>;
export type TopologyHostDto = z.infer<typeof TopologyHostSchema>;
export type TopologyDto = z.infer<typeof TopologySchema>;
export type CapacityDto = z.infer<typeof CapacitySchema>;
export type JournalEntryDto = z.infer<typeof JournalEntrySchema>;
export type AuditPageDto = z.infer<typeof AuditPageSchema>;
export type VerdictDto = z.infer<typeof VerdictSchema>;
export type DrillDto = z.infer<typeof DrillSchema>;
export type FailureRowDto = z.infer<typeof FailureRowSchema>;
export type DeliveryDto = z.infer<typeof DeliverySchema>;
export type DeliveriesDto = z.infer<typeof DeliveriesSchema>;
