/**
 * The power-fencing configuration: which fence agent fences which host, at which address, with
 * which login and credentials file. It is the hospital's, not the blueprint's — BMC addresses and
 * passwords change with the hardware, and a blueprint is shared and reviewed — so it lives in a
 * small file of its own (YAML or JSON), parsed and validated once at the edge and frozen:
 *
 *   version: 1
 *   retry: { attempts: 3, backoffMs: 250 }      # optional
 *   hosts:
 *     lab-a1:
 *       agent: fence_ipmilan                    # a fence-agents program (in agentDirectory)
 *       address: 10.0.9.11                      # the BMC: ip=
 *       port: 623                               # its TCP/UDP port: ipport= (optional)
 *       login: tomaranai                        # username=
 *       credentialsFile: /etc/tomaranai/bmc/lab-a1.password   # password= (the file's first line; mode 0600)
 *       plug: "3"                               # an outlet or VM name, for PDUs and hypervisors: plug= (optional)
 *       timeoutS: 20                            # one call's deadline (optional)
 *       options: { lanplus: "1", cipher: "3" }  # any further key=value the agent takes (optional)
 *
 * Every problem is collected (zod), each with the path of its field, and thrown as one coded error.
 */
import { constants, accessSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve, dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { TomaranaiError } from '../../errors/index.ts';
import { DEFAULT_FENCE_RETRY, type FenceDevice, type FenceRetryPolicy } from './fence-agent.ts';

/** Where Debian's fence-agents installs its programs. */
export const DEFAULT_FENCE_AGENT_DIRECTORY = '/usr/sbin';
const DEFAULT_TIMEOUT_S = 20;
/** Options Tomaranai sets itself from the named fields; `options` may not set them again. */
const RESERVED_OPTIONS = ['action', 'ip', 'ipport', 'username', 'login', 'password', 'passwd', 'plug', 'port', 'password_script'] as const;

const optionKey = z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'an option name is lower-case letters, digits, _ and -');
const optionValue = z.string().max(1024).regex(/^[^\n\r]*$/, 'an option value is one line');

const deviceSchema = z
  .object({
    agent: z.string().regex(/^fence_[a-z0-9_]{1,60}$/, 'a fence agent is named fence_<something> (fence_ipmilan, fence_redfish, …)'),
    address: z.string().min(1).max(253).regex(/^[A-Za-z0-9.:_-]+$/, 'an address is a host name or an IP address'),
    port: z.number().int().min(1).max(65_535).optional(),
    login: z.string().min(1).max(64).regex(/^[^\n\r]*$/),
    credentialsFile: z.string().min(1),
    plug: optionValue.min(1).optional(),
    timeoutS: z.number().positive().max(300).optional(),
    options: z.record(optionKey, optionValue).optional(),
  })
  .strict()
  .superRefine((device, context) => {
    for (const key of Object.keys(device.options ?? {})) {
      if ((RESERVED_OPTIONS as readonly string[]).includes(key)) {
        context.addIssue({ code: 'custom', path: ['options', key], message: `${key} is set from the device's own fields (address, port, login, credentialsFile, plug)` });
      }
    }
  });

const fileSchema = z
  .object({
    version: z.literal(1),
    agentDirectory: z.string().min(1).optional(),
    retry: z.object({ attempts: z.number().int().min(1).max(10), backoffMs: z.number().int().min(0).max(60_000) }).strict().optional(),
    hosts: z.record(z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a host name as in the blueprint'), deviceSchema).refine((hosts) => Object.keys(hosts).length > 0, 'name at least one host'),
  })
  .strict();

export type FencingFile = z.infer<typeof fileSchema>;

export interface FencingConfig {
  readonly file: string;
  readonly retry: FenceRetryPolicy;
  readonly devices: ReadonlyMap<string, FenceDevice>;
}

/** Parses and checks a fencing file (text already read); throws one TomaranaiError naming every problem. */
export function parseFencingConfig(text: string, file: string, options: { checkFiles?: boolean } = {}): FencingConfig {
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 0 });
  } catch (error) {
    throw new TomaranaiError('TMR_FENCE_CONFIG_INVALID', `${file} is not ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), code: issue.code, message: issue.message }));
    throw new TomaranaiError('TMR_FENCE_CONFIG_INVALID', `${file}: ${issues.map((issue) => `${issue.path || '(top)'}: ${issue.message}`).join('; ')}`, undefined, issues);
  }
  const base = dirname(resolve(file));
  const agentDirectory = parsed.data.agentDirectory === undefined ? DEFAULT_FENCE_AGENT_DIRECTORY : resolve(base, parsed.data.agentDirectory);
  const devices = new Map<string, FenceDevice>();
  for (const [host, device] of Object.entries(parsed.data.hosts)) {
    const program = join(agentDirectory, device.agent);
    const credentialsFile = isAbsolute(device.credentialsFile) ? device.credentialsFile : resolve(base, device.credentialsFile);
    const password = options.checkFiles === false ? '' : readCredentials(host, credentialsFile);
    if (options.checkFiles !== false) checkProgram(host, program);
    devices.set(
      host,
      Object.freeze({
        host,
        agent: device.agent,
        program,
        timeoutMs: Math.round((device.timeoutS ?? DEFAULT_TIMEOUT_S) * 1000),
        options: Object.freeze({
          ip: device.address,
          ...(device.port === undefined ? {} : { ipport: String(device.port) }),
          username: device.login,
          password,
          ...(device.plug === undefined ? {} : { plug: device.plug }),
          ...device.options,
        }),
      }),
    );
  }
  return Object.freeze({ file, retry: Object.freeze(parsed.data.retry ?? DEFAULT_FENCE_RETRY), devices });
}

/** Reads and checks a fencing file. */
export function loadFencingConfig(file: string): FencingConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new TomaranaiError('TMR_FENCE_CONFIG_INVALID', `cannot read the fencing file ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseFencingConfig(text, file);
}

/** The device of every host, or TMR_FENCE_HOST_MISSING naming those without one. */
export function devicesFor(config: FencingConfig, hosts: readonly string[]): ReadonlyMap<string, FenceDevice> {
  const missing = hosts.filter((host) => !config.devices.has(host));
  if (missing.length > 0) {
    throw new TomaranaiError('TMR_FENCE_HOST_MISSING', `${config.file} names no fence device for ${missing.join(', ')}`);
  }
  return config.devices;
}

function readCredentials(host: string, file: string): string {
  let mode: number;
  let text: string;
  try {
    mode = statSync(file).mode;
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new TomaranaiError('TMR_FENCE_CREDENTIALS', `the credentials file of ${host} (${file}) cannot be read: ${error instanceof Error ? error.message : String(error)}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new TomaranaiError('TMR_FENCE_CREDENTIALS', `the credentials file of ${host} (${file}) is readable by others (mode ${(mode & 0o777).toString(8)})`);
  }
  const password = text.split('\n')[0]?.trim() ?? '';
  if (password === '') throw new TomaranaiError('TMR_FENCE_CREDENTIALS', `the credentials file of ${host} (${file}) is empty`);
  return password;
}

function checkProgram(host: string, program: string): void {
  try {
    accessSync(program, constants.X_OK);
  } catch {
    throw new TomaranaiError('TMR_FENCE_AGENT_NOT_FOUND', `the fence agent of ${host} (${program}) is not an executable program`);
  }
}
