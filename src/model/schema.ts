/**
 * The blueprint's YAML format, declared once with zod: it validates a parsed document and
 * produces the JSON Schema that editors use (`tomaranai schema`).
 */
import { z } from 'zod';

const name = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, {
    message: 'must be lower-case letters, digits and dashes, 1-63 characters, like "ehr-db"',
  })
  .describe('A name: lower-case letters, digits and dashes');

const positive = z.number().positive();
const nonNegative = z.number().nonnegative();

export const tierOverrideSchema = z
  .strictObject({
    rtoS: nonNegative.optional().describe('Recovery time objective in seconds'),
    rpoS: nonNegative.optional().describe('Recovery point objective in seconds'),
    mechanism: z.enum(['failover', 'restart', 'restore']).optional(),
    priority: z.number().int().min(0).max(99).optional().describe('Lower restarts first and is shed last'),
    replication: z
      .strictObject({ mode: z.enum(['sync', 'async']), intervalS: nonNegative.default(0) })
      .optional(),
    snapshot: z
      .strictObject({ intervalS: positive, retentionS: positive, immutable: z.boolean().default(true) })
      .optional(),
    cpuOvercommit: positive.max(16).optional(),
    memoryOvercommit: z.boolean().optional(),
    antiAffinity: z.enum(['room', 'rack', 'host', 'none']).optional(),
    reserveFailoverCapacity: z.boolean().optional(),
    sheddable: z.boolean().optional(),
    costWeight: nonNegative.optional(),
  })
  .describe('Overrides of a tier; unspecified fields keep the defaults of DESIGN.md');

export const hostModelSchema = z.strictObject({
  name,
  cores: z.number().int().positive().max(1024),
  ghz: positive.max(10),
  memoryGiB: positive.max(65_536),
  watts: positive.max(20_000),
  rackUnits: z.number().int().positive().max(16).default(2),
  costYen: nonNegative.optional(),
});

export const hostSchema = z.strictObject({
  name,
  model: name.optional().describe('A hostModels entry whose fields this host inherits'),
  cores: z.number().int().positive().max(1024).optional(),
  ghz: positive.max(10).optional(),
  memoryGiB: positive.max(65_536).optional(),
  watts: positive.max(20_000).optional(),
  room: name,
  rack: name,
  powerFeed: name,
});

export const powerFeedSchema = z.strictObject({
  name,
  room: name.optional(),
  generator: z.boolean().default(false).describe('Backed by the emergency generator'),
  generatorHours: positive.optional(),
});

export const datastoreSchema = z.strictObject({
  name,
  room: name,
  capacityTiB: positive.optional(),
  replicatedTo: name.optional().describe('The datastore in another room that holds the replica'),
  immutableSnapshots: z.boolean().default(true),
});

export const networkSchema = z.strictObject({
  name,
  kind: z.enum(['server', 'client', 'dmz', 'external', 'modality', 'management', 'vendor', 'forensic']),
  vendor: name.optional().describe('For kind vendor: whose remote-maintenance connection this is'),
  cidr: z.string().optional(),
});

export const vmGroupSchema = z.strictObject({
  name: name.optional().describe('Group name, used in VM names when a service has several groups'),
  count: z.number().int().positive().max(1000).default(1),
  vcpu: positive.max(512).describe('Fractional vCPU (1.5 = a time-share of cores)'),
  memoryGiB: positive.max(65_536),
  diskGiB: positive.max(1_000_000),
  bootTimeS: positive.max(3600).default(60).describe('Power-on to health check passing'),
});

export const healthCheckSchema = z.strictObject({
  kind: z.enum(['http', 'tcp', 'script']).default('http'),
  path: z.string().optional(),
  port: z.number().int().min(1).max(65_535).optional(),
  intervalS: positive.max(300).default(0.5),
  timeoutS: positive.max(300).default(1),
});

export const demandSchema = z.strictObject({
  profile: z.enum(['outpatient', 'ward', 'batch', 'flat', 'emergency', 'office']),
  peakFactor: positive.max(20).default(1),
  surgeFactor: positive.max(20).default(1).describe('Load multiplier during a mass-casualty event'),
});

export const serviceSchema = z.strictObject({
  name,
  title: z.string().max(200).optional(),
  tier: name,
  vendor: name,
  dependsOn: z.array(name).max(100).default([]),
  datastore: name.optional(),
  network: name.optional(),
  vms: z.array(vmGroupSchema).min(1).max(100),
  healthCheck: healthCheckSchema.optional(),
  demand: demandSchema.optional(),
});

export const flowSchema = z.strictObject({
  from: name.describe('A service or a network'),
  to: name.describe('A service or a network'),
  port: z.number().int().min(1).max(65_535),
  protocol: z.string().max(40).optional(),
  note: z.string().max(500).optional(),
});

export const blueprintSchema = z
  .strictObject({
    apiVersion: z.literal('tomaranai/v1'),
    kind: z.literal('Hospital'),
    name,
    description: z.string().max(10_000).optional(),
    beds: z.number().int().nonnegative().optional(),
    tiers: z.record(name, tierOverrideSchema).default({}),
    hostModels: z.array(hostModelSchema).max(100).default([]),
    powerFeeds: z.array(powerFeedSchema).min(1).max(1000),
    hosts: z.array(hostSchema).min(1).max(10_000),
    datastores: z.array(datastoreSchema).min(1).max(1000),
    networks: z.array(networkSchema).max(1000).default([]),
    services: z.array(serviceSchema).min(1).max(10_000),
    flows: z.array(flowSchema).max(100_000).default([]),
  })
  .describe('A Tomaranai hospital blueprint');

export type RawBlueprint = z.output<typeof blueprintSchema>;

export function blueprintJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(blueprintSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { $id: 'https://tomaranai.dev/schema/blueprint-v1.json', title: 'Tomaranai blueprint', ...schema };
}
