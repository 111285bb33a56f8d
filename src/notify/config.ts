/**
 * The notification configuration: receivers (where messages go) and routes (which alerts go to
 * which receivers). It is service configuration, not part of the blueprint: a hospital changes its
 * on-call addresses without touching what it runs. Parsed once at the edge, every issue collected,
 * then frozen and passed down.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { TomaranaiError } from '../errors/index.ts';
import { ALERT_KINDS, SEVERITIES } from './alert.ts';

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const CLOCK_TIME = /^([01]\d|2[0-3]):[0-5]\d$/;

const Delivery = z
  .object({
    /** Wall milliseconds one attempt may take before it counts as failed. */
    timeoutMs: z.number().int().min(100).max(120_000).default(5_000),
    /** First retry after this, doubled each time up to maxRetryMs. */
    initialRetryMs: z.number().int().min(10).max(600_000).default(1_000),
    maxRetryMs: z.number().int().min(10).max(3_600_000).default(60_000),
    /** An alert older than this is given up (journaled as notify.dropped). */
    maxAgeMin: z.number().min(1).max(10_080).default(1_440),
  })
  .strict();

const QuietHours = z
  .object({
    from: z.string().regex(CLOCK_TIME, 'HH:MM'),
    to: z.string().regex(CLOCK_TIME, 'HH:MM'),
    timeZone: z.string().default('Asia/Tokyo'),
    /** Alerts at or above this severity go out even in quiet hours; the rest wait until they end. */
    minSeverity: z.enum(SEVERITIES).default('critical'),
  })
  .strict()
  .refine((quiet) => isTimeZone(quiet.timeZone), { message: 'an IANA time zone such as Asia/Tokyo', path: ['timeZone'] });

const Common = {
  name: z.string().regex(NAME, 'lower-case letters, digits and dashes'),
  language: z.enum(['ja', 'en']).default('en'),
  /** A vendor's receiver hears only about that vendor's systems. */
  vendor: z.string().regex(NAME).optional(),
  quietHours: QuietHours.optional(),
  delivery: Delivery.default(Delivery.parse({})),
};

const Webhook = z.object({ ...Common, type: z.literal('webhook'), url: z.url(), hmacSecret: z.string().min(16).optional(), headers: z.record(z.string(), z.string()).default({}) }).strict();
const Alertmanager = z.object({ ...Common, type: z.literal('alertmanager'), url: z.url() }).strict();
const Email = z
  .object({
    ...Common,
    type: z.literal('email'),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(587),
    /** STARTTLS is required unless this is false (a relay on the same host). */
    requireTls: z.boolean().default(true),
    /** Check the server's certificate (turn off only for a test server with a self-signed one). */
    verifyCertificate: z.boolean().default(true),
    user: z.string().optional(),
    password: z.string().optional(),
    from: z.string().min(3),
    to: z.array(z.string().min(3)).min(1),
  })
  .strict();
const SnmpUser = z
  .object({
    name: z.string().min(1),
    authProtocol: z.enum(['sha', 'md5', 'sha256', 'sha512']).optional(),
    authKey: z.string().min(8).optional(),
    privProtocol: z.enum(['aes', 'des', 'aes256b', 'aes256r']).optional(),
    privKey: z.string().min(8).optional(),
  })
  .strict();
const Snmp = z
  .object({
    ...Common,
    type: z.literal('snmp'),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(162),
    version: z.enum(['2c', '3']).default('2c'),
    community: z.string().default('public'),
    user: SnmpUser.optional(),
    /** inform: the receiver acknowledges, so a receiver that was down gets it on a retry; trap: fire and forget. */
    mode: z.enum(['inform', 'trap']).default('inform'),
  })
  .strict()
  .refine((snmp) => snmp.version !== '3' || snmp.user !== undefined, { message: 'SNMPv3 needs a user', path: ['user'] });

const Syslog = z
  .object({
    ...Common,
    type: z.literal('syslog'),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(514),
    protocol: z.enum(['udp', 'tcp']).default('tcp'),
    facility: z.enum(['local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7', 'daemon', 'user']).default('local0'),
  })
  .strict();

const Receiver = z.discriminatedUnion('type', [Webhook, Alertmanager, Email, Snmp, Syslog]);

const Route = z
  .object({
    /** The alert kinds this route carries; all when left out. */
    events: z.array(z.enum(ALERT_KINDS)).min(1).optional(),
    minSeverity: z.enum(SEVERITIES).default('info'),
    receivers: z.array(z.string().regex(NAME)).min(1),
    /** Repeat an open incident's alert this often (minutes) until it closes; 0: never. */
    repeatIntervalMin: z.number().min(0).max(10_080).default(0),
  })
  .strict();

export const NotifyConfigSchema = z
  .object({
    receivers: z.array(Receiver).max(64).default([]),
    routes: z.array(Route).max(256).default([]),
  })
  .strict()
  .superRefine((config, context) => {
    const names = new Set<string>();
    config.receivers.forEach((receiver, index) => {
      if (names.has(receiver.name)) context.addIssue({ code: 'custom', message: `receiver ${receiver.name} is named twice`, path: ['receivers', index, 'name'] });
      names.add(receiver.name);
    });
    config.routes.forEach((route, index) => {
      route.receivers.forEach((name, at) => {
        if (!names.has(name)) context.addIssue({ code: 'custom', message: `no receiver named ${name}`, path: ['routes', index, 'receivers', at] });
      });
    });
  });

export type NotifyConfig = z.infer<typeof NotifyConfigSchema>;
export type ReceiverConfig = NotifyConfig['receivers'][number];
export type RouteConfig = NotifyConfig['routes'][number];
export type QuietHoursConfig = NonNullable<ReceiverConfig['quietHours']>;

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/** Parses the YAML (or JSON) text of a notification configuration; throws TMR_NOTIFY_CONFIG listing every issue. */
export function parseNotifyConfig(source: string, origin = 'notify configuration'): Readonly<NotifyConfig> {
  let document: unknown;
  try {
    document = parseYaml(source, { maxAliasCount: 100 }) ?? {};
  } catch (error) {
    throw new TomaranaiError('TMR_NOTIFY_CONFIG', `${origin}: not YAML: ${error instanceof Error ? error.message : String(error)}`);
  }
  const result = NotifyConfigSchema.safeParse(document);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
    throw new TomaranaiError('TMR_NOTIFY_CONFIG', `${origin}: ${issues.length} field(s) at fault: ${issues.join('; ')}`.slice(0, 2000));
  }
  return deepFreeze(result.data);
}
