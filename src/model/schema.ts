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

const failureRate = z
  .strictObject({
    mtbfHours: positive.max(1e9).describe('Mean time between failures of one unit, in hours'),
    mttrHours: positive.max(100_000).describe('Mean time to repair or replace it, in hours'),
  })
  .describe('How often one unit fails and how long its repair takes');

const redundantFailureRate = z
  .strictObject({
    mtbfHours: positive.max(1e9).describe('Mean time between failures of one unit, in hours'),
    mttrHours: positive.max(100_000).describe('Mean time to replace a failed unit, in hours'),
    units: z.number().int().min(1).max(2).optional().describe('1 = a single unit, 2 = a redundant pair (the group fails only when both do)'),
    commonCauseFraction: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe('Share of failures that take both units of a pair at once (beta factor, IEC 61508-6)'),
  })
  .describe('A unit that may come as a redundant pair');

export const reliabilitySchema = z
  .strictObject({
    host: failureRate.optional().describe('A host as a whole (mainboard, CPU, memory, firmware, hypervisor crash)'),
    disk: redundantFailureRate.optional().describe("A host's boot disks"),
    powerSupply: redundantFailureRate.optional().describe("A host's power supplies"),
    switch: redundantFailureRate.optional().describe("A rack's top-of-rack switches: their loss cuts the rack off"),
    powerFeed: failureRate.optional().describe('A power feed (UPS, distribution, breaker): its hosts lose power'),
    room: failureRate.optional().describe('A server room (fire, flood, cooling loss): everything in it stops'),
    datastore: failureRate.optional().describe('A storage array (datastore) as a whole'),
    targets: z
      .record(name, z.number().gt(0).lt(1))
      .optional()
      .describe('Promised availability per tier, e.g. {continuous: 0.99999}; defaults in the README, "Capacity"'),
  })
  .describe('Failure rates and repair times for the availability estimate; unspecified parts keep the defaults');

export const protectionSchema = z
  .strictObject({
    survive: z
      .array(z.enum(['host', 'rack', 'room', 'powerFeed', 'hostPair']))
      .min(1)
      .max(5)
      .optional()
      .describe('Failures after which every continuous and critical service must still run within its RTO (default [host])'),
  })
  .describe('What the hospital must survive: admission control for plan and size');

export const legacyEstateSchema = z
  .strictObject({
    description: z.string().max(2000).optional(),
    servers: z.number().int().positive().max(100_000).describe('Physical servers of the estate before virtualisation'),
    wattsPerServer: positive.max(20_000).describe('Average electrical draw of one server'),
    rackUnitsPerServer: positive.max(16).default(2),
    costYenPerServer: nonNegative.optional().describe('Purchase price of one server'),
    lifeYears: positive.max(30).default(5).describe('Years before a server is replaced (its maintenance contract)'),
  })
  .describe('The one-physical-server-per-system estate the hospital had before, for `tomaranai size`');

export const economicsSchema = z
  .strictObject({
    electricityYenPerKWh: nonNegative.max(10_000).optional().describe('Price of electricity (default 31 yen/kWh)'),
    pue: z.number().min(1).max(5).optional().describe('Power usage effectiveness: cooling and losses per IT watt (default 1.7)'),
    horizonYears: positive.max(50).optional().describe('Years compared (default 5)'),
    hostLifeYears: positive.max(30).optional().describe('Years before a cluster host is replaced (default 7)'),
  })
  .describe('Prices and horizons for the sizing comparison');

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
    protection: protectionSchema.optional(),
    reliability: reliabilitySchema.optional(),
    legacyEstate: legacyEstateSchema.optional(),
    economics: economicsSchema.optional(),
  })
  .describe('A Tomaranai hospital blueprint');

export type RawBlueprint = z.output<typeof blueprintSchema>;

export function blueprintJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(blueprintSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { $id: 'https://tomaranai.dev/schema/blueprint-v1.json', title: 'Tomaranai blueprint', ...schema };
}
