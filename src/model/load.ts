/**
 * Text → validated, typed blueprint, or every problem with its line and column.
 * Never throws on any input: all failures become problems.
 */
import { CST, isMap, isNode, isScalar, Lexer, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { buildBlueprint, resolveTiers, vmNames, type Blueprint } from './blueprint.ts';
import type { Problem, ProblemCode } from './problems.ts';
import { blueprintSchema, type RawBlueprint } from './schema.ts';

export const BLUEPRINT_SIZE_LIMIT_BYTES = 8 * 1024 * 1024;
export const BLUEPRINT_DEPTH_LIMIT = 64;

export type LoadResult =
  | { readonly ok: true; readonly blueprint: Blueprint; readonly warnings: readonly Problem[] }
  | { readonly ok: false; readonly problems: readonly Problem[] };

type Path = readonly (string | number)[];

class Locator {
  constructor(
    private readonly document: Document | null,
    private readonly lines: LineCounter,
  ) {}

  /** Position of the node at `path`, or of its nearest existing ancestor. */
  at(path: Path): { line: number; col: number } {
    if (this.document === null) return { line: 1, col: 1 };
    for (let length = path.length; length >= 0; length--) {
      const node = length === 0 ? this.document.contents : this.document.getIn(path.slice(0, length), true);
      if (isNode(node) && node.range) {
        const position = this.lines.linePos(node.range[0]);
        return { line: position.line, col: position.col };
      }
    }
    return { line: 1, col: 1 };
  }

  /** Position of the key that ends `path` (an unknown field), not of its value, which may start a line later. */
  keyAt(path: Path): { line: number; col: number } {
    if (this.document === null || path.length === 0) return this.at(path);
    const parent = path.length === 1 ? this.document.contents : this.document.getIn(path.slice(0, -1), true);
    if (!isMap(parent)) return this.at(path);
    const key = String(path[path.length - 1]);
    const pair = parent.items.find((item) => isScalar(item.key) && String(item.key.value) === key);
    if (pair === undefined || !isNode(pair.key) || !pair.key.range) return this.at(path);
    const position = this.lines.linePos(pair.key.range[0]);
    return { line: position.line, col: position.col };
  }
}

function problem(
  locator: Locator,
  code: ProblemCode,
  path: Path,
  message: string,
  hint: string,
  severity: 'error' | 'warning' = 'error',
): Problem {
  return { code, severity, path: [...path], ...locator.at(path), message, hint };
}

export function loadBlueprint(input: string | Uint8Array): LoadResult {
  try {
    return loadUnsafe(input);
  } catch (error) {
    // A last line of defence: a bug or a pathological input must still end as a problem.
    const message = error instanceof Error ? error.message : String(error);
    const code: ProblemCode = error instanceof RangeError ? 'TMR_BLUEPRINT_TOO_DEEP' : 'TMR_BLUEPRINT_YAML';
    return {
      ok: false,
      problems: [
        {
          code,
          severity: 'error',
          path: [],
          line: 1,
          col: 1,
          message: `the blueprint cannot be read: ${message.slice(0, 200)}`,
          hint: 'check that the file is a YAML blueprint; `tomaranai schema` prints the format',
        },
      ],
    };
  }
}

function loadUnsafe(input: string | Uint8Array): LoadResult {
  const empty = new Locator(null, new LineCounter());
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > BLUEPRINT_SIZE_LIMIT_BYTES) {
    return fail([
      problem(
        empty,
        'TMR_BLUEPRINT_TOO_LARGE',
        [],
        `the file is ${(size / 1024 / 1024).toFixed(1)} MiB, larger than the ${BLUEPRINT_SIZE_LIMIT_BYTES / 1024 / 1024} MiB a blueprint may be`,
        'a hospital blueprint is a few hundred KiB; check that this is the right file',
      ),
    ]);
  }
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      return fail([
        problem(empty, 'TMR_BLUEPRINT_NOT_TEXT', [], 'the file is not UTF-8 text', 'save the blueprint as UTF-8 YAML'),
      ]);
    }
  }
  if (text.includes('\u0000')) {
    return fail([
      problem(empty, 'TMR_BLUEPRINT_NOT_TEXT', [], 'the file contains NUL bytes, so it is not a YAML text', 'save the blueprint as UTF-8 YAML'),
    ]);
  }
  if (text.trim() === '') {
    return fail([
      problem(
        empty,
        'TMR_BLUEPRINT_SCHEMA',
        [],
        'the blueprint is empty',
        'start from blueprints/regional-hospital.yaml; `tomaranai schema` prints the format',
      ),
    ]);
  }
  // The bound is at most twice the depth plus two, so a document within the exact limit, checked
  // after parsing, always passes; four times the limit keeps the parser's own stack shallow.
  const deepOffset = nestingBoundExceeded(text, 4 * BLUEPRINT_DEPTH_LIMIT);
  if (deepOffset >= 0) {
    const before = text.slice(0, deepOffset);
    return fail([
      {
        ...problem(
          empty,
          'TMR_BLUEPRINT_TOO_DEEP',
          [],
          `the document nests far deeper than the ${BLUEPRINT_DEPTH_LIMIT} levels a blueprint may use`,
          'check the brackets and the indentation; `tomaranai schema` prints the format',
        ),
        line: before.split('\n').length,
        col: deepOffset - before.lastIndexOf('\n'),
      },
    ]);
  }
  // Lines are counted here, not by the parser: it misses the line breaks inside the tokens it
  // cannot place (a stray "}" at the top), and every later position then lands on a wrong line.
  const lines = new LineCounter();
  lines.addNewLine(0);
  for (let index = text.indexOf('\n'); index >= 0; index = text.indexOf('\n', index + 1)) lines.addNewLine(index + 1);
  // logLevel 'error': the core never prints; a stringified collection key would otherwise warn on stderr.
  const document = parseDocument(text, { prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
  const locator = new Locator(document, lines);
  if (document.errors.length > 0) {
    return fail(
      document.errors.slice(0, 20).map((error) => {
        // linePos is filled in only with prettyErrors; the offset in pos is always there.
        const position = error.linePos?.[0] ?? lines.linePos(error.pos[0]);
        return {
          code: 'TMR_BLUEPRINT_YAML' as const,
          severity: 'error' as const,
          path: [],
          line: position.line,
          col: position.col,
          message: `YAML syntax: ${error.message.split('\n')[0]}`,
          hint: yamlHint(error.code),
        };
      }),
    );
  }
  const depth = nodeDepth(document.contents, 0);
  if (depth > BLUEPRINT_DEPTH_LIMIT) {
    return fail([
      problem(
        locator,
        'TMR_BLUEPRINT_TOO_DEEP',
        [],
        `the document nests ${depth} levels deep; a blueprint needs fewer than ${BLUEPRINT_DEPTH_LIMIT}`,
        'check the indentation; `tomaranai schema` prints the format',
      ),
    ]);
  }
  const data: unknown = document.toJS({ maxAliasCount: 1000 });
  // reportInput: without it zod leaves issue.input undefined, and a wrong type would read as a missing field.
  const parsed = blueprintSchema.safeParse(data, { reportInput: true });
  if (!parsed.success) return fail(schemaProblems(locator, parsed.error.issues));
  const raw = parsed.data;
  const semantic = semanticProblems(locator, raw);
  const errors = semantic.filter((entry) => entry.severity === 'error');
  if (errors.length > 0) return fail(semantic);
  return { ok: true, blueprint: buildBlueprint(raw), warnings: semantic };
}

function fail(problems: Problem[]): LoadResult {
  return { ok: false, problems: problems.sort((a, b) => a.line - b.line || a.col - b.col) };
}

function yamlHint(code: string): string {
  switch (code) {
    case 'DUPLICATE_KEY':
      return 'a key appears twice in one mapping; keep one';
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
      return 'check the indentation and the colons on this line';
    case 'MULTILINE_IMPLICIT_KEY':
      return 'a key runs on to the next line: is the colon after the key missing ("key: value")?';
    case 'TAB_AS_INDENT':
      return 'indent YAML with spaces, not tabs';
    default:
      return 'fix the YAML syntax at this position';
  }
}

/**
 * An upper bound of the nesting depth, from the lexer alone, or -1 when it stays within `limit`.
 * The YAML parser needs memory, and its composer stack, in proportion to the depth: a file of a
 * million "[" exhausts the heap, and a stack overflow inside the composer can abort the process
 * (V8 compiling a regular expression on an exhausted stack), so a deep file must be refused before
 * either runs. Block collections are tracked by the columns where they start (at most two levels,
 * a map and its value's sequence, share a column), flow collections by their brackets.
 * Returns the offset of the token where the bound first exceeds `limit`.
 */
function nestingBoundExceeded(text: string, limit: number): number {
  const starts: number[] = [];
  let offset = 0;
  let column = 0;
  let lineStart = true;
  let afterIndicator = false;
  let scalarNext = false;
  let flowDepth = 0;
  for (const token of new Lexer().lex(text)) {
    if (token === CST.DOCUMENT || token === CST.FLOW_END || token === CST.SCALAR) {
      if (token === CST.SCALAR) scalarNext = true;
      else flowDepth = 0;
      if (token === CST.DOCUMENT) starts.length = 0;
      continue;
    }
    const type = scalarNext ? 'scalar' : CST.tokenType(token);
    scalarNext = false;
    const content = type !== 'space' && type !== 'newline' && type !== 'comment';
    const indicator = type === 'seq-item-ind' || type === 'explicit-key-ind';
    if (flowDepth === 0 && content && (lineStart || afterIndicator || indicator)) {
      while (starts.length > 0 && starts[starts.length - 1]! > column) starts.pop();
      if (starts[starts.length - 1] !== column) starts.push(column);
    }
    if (content) {
      lineStart = false;
      afterIndicator = indicator;
    }
    if (type === 'flow-seq-start' || type === 'flow-map-start') flowDepth++;
    else if ((type === 'flow-seq-end' || type === 'flow-map-end') && flowDepth > 0) flowDepth--;
    if (2 * starts.length + flowDepth > limit) return offset;
    offset += token.length;
    const newline = token.lastIndexOf('\n');
    if (newline < 0) column += token.length;
    else {
      column = token.length - newline - 1;
      if (column === 0) {
        lineStart = true;
        afterIndicator = false;
      }
    }
  }
  return -1;
}

function nodeDepth(node: unknown, depth: number): number {
  if (depth > BLUEPRINT_DEPTH_LIMIT) return depth;
  if (node === null || typeof node !== 'object') return depth;
  const items = (node as { items?: unknown[] }).items;
  if (!Array.isArray(items)) return depth;
  let deepest = depth + 1;
  for (const item of items) {
    const pair = item as { key?: unknown; value?: unknown };
    const child = pair !== null && typeof pair === 'object' && 'value' in pair ? pair.value : item;
    deepest = Math.max(deepest, nodeDepth(child, depth + 1));
    if (deepest > BLUEPRINT_DEPTH_LIMIT) break;
  }
  return deepest;
}

function schemaProblems(locator: Locator, issues: readonly z.core.$ZodIssue[]): Problem[] {
  return issues.slice(0, 100).map((issue) => {
    const path = issue.path.map((key) => (typeof key === 'symbol' ? String(key) : key));
    const field = path.length === 0 ? 'the document' : path.join('.');
    let message = `${field}: ${issue.message}`;
    let hint = 'see `tomaranai schema` for the format of this field';
    if (issue.code === 'unrecognized_keys') {
      message = `${field === 'the document' ? 'top level' : field}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => `"${key}"`).join(', ')}`;
      hint = 'remove it or check its spelling; `tomaranai schema` lists the allowed fields';
      const keyPath = [...path, issue.keys[0]!];
      return { ...problem(locator, 'TMR_BLUEPRINT_SCHEMA', keyPath, message, hint), ...locator.keyAt(keyPath) };
    }
    if (issue.code === 'invalid_type' && issue.input === undefined) {
      message = `${field}: required field is missing`;
      hint = `add "${String(path[path.length - 1])}"`;
    }
    return problem(locator, 'TMR_BLUEPRINT_SCHEMA', path, message, hint);
  });
}

function semanticProblems(locator: Locator, raw: RawBlueprint): Problem[] {
  const problems: Problem[] = [];
  const add = (code: ProblemCode, path: Path, message: string, hint: string, severity: 'error' | 'warning' = 'error') =>
    problems.push(problem(locator, code, path, message, hint, severity));

  const names = (kind: string, list: readonly { name: string }[], key: string): Set<string> => {
    const seen = new Map<string, number>();
    list.forEach((item, index) => {
      const first = seen.get(item.name);
      if (first !== undefined) {
        add(
          'TMR_BLUEPRINT_DUPLICATE',
          [key, index, 'name'],
          `duplicate ${kind} name "${item.name}" (first defined at ${key}[${first}], line ${locator.at([key, first, 'name']).line})`,
          `give each ${kind} its own name`,
        );
      } else seen.set(item.name, index);
    });
    return new Set(seen.keys());
  };
  const modelNames = names('host model', raw.hostModels, 'hostModels');
  const feedNames = names('power feed', raw.powerFeeds, 'powerFeeds');
  names('host', raw.hosts, 'hosts');
  const datastoreNames = names('datastore', raw.datastores, 'datastores');
  const networkNames = names('network', raw.networks, 'networks');
  const serviceNames = names('service', raw.services, 'services');

  const suggest = (name: string, candidates: Iterable<string>): string => {
    const best = closest(name, candidates);
    return best === null ? '' : `did you mean "${best}"? `;
  };
  const feeds = new Map(raw.powerFeeds.map((feed) => [feed.name, feed]));
  const models = new Map(raw.hostModels.map((model) => [model.name, model]));

  raw.hosts.forEach((host, index) => {
    if (!feedNames.has(host.powerFeed)) {
      add(
        'TMR_BLUEPRINT_UNKNOWN_REF',
        ['hosts', index, 'powerFeed'],
        `host "${host.name}" names unknown power feed "${host.powerFeed}"`,
        `${suggest(host.powerFeed, feedNames)}define it under powerFeeds`,
      );
    } else {
      const feedRoom = feeds.get(host.powerFeed)?.room;
      if (feedRoom !== undefined && feedRoom !== host.room) {
        add(
          'TMR_BLUEPRINT_FEED_ROOM',
          ['hosts', index, 'powerFeed'],
          `host "${host.name}" in room "${host.room}" is fed by "${host.powerFeed}" of room "${feedRoom}"`,
          'use a power feed of the host\'s own room',
        );
      }
    }
    if (host.model !== undefined && !modelNames.has(host.model)) {
      add(
        'TMR_BLUEPRINT_UNKNOWN_REF',
        ['hosts', index, 'model'],
        `host "${host.name}" names unknown host model "${host.model}"`,
        `${suggest(host.model, modelNames)}define it under hostModels`,
      );
    } else {
      const model = host.model === undefined ? undefined : models.get(host.model);
      const missing = (['cores', 'ghz', 'memoryGiB', 'watts'] as const).filter(
        (field) => host[field] === undefined && model?.[field] === undefined,
      );
      if (missing.length > 0) {
        add(
          'TMR_BLUEPRINT_HOST_INCOMPLETE',
          ['hosts', index],
          `host "${host.name}" has no ${missing.join(', ')}`,
          'give the fields or a "model" from hostModels',
        );
      }
    }
  });

  const datastoreRoom = new Map(raw.datastores.map((store) => [store.name, store.room]));
  raw.datastores.forEach((store, index) => {
    if (store.replicatedTo === undefined) return;
    if (!datastoreNames.has(store.replicatedTo)) {
      add(
        'TMR_BLUEPRINT_UNKNOWN_REF',
        ['datastores', index, 'replicatedTo'],
        `datastore "${store.name}" replicates to unknown datastore "${store.replicatedTo}"`,
        `${suggest(store.replicatedTo, datastoreNames)}define it under datastores`,
      );
    } else if (datastoreRoom.get(store.replicatedTo) === store.room) {
      add(
        'TMR_BLUEPRINT_REPLICA_ROOM',
        ['datastores', index, 'replicatedTo'],
        `datastore "${store.name}" replicates to "${store.replicatedTo}" in the same room "${store.room}"`,
        'a replica protects against a room failure only in another room',
        'warning',
      );
    }
  });

  const tiers = resolveTiers(raw);
  const largest = raw.hosts.reduce(
    (best, host) => {
      const model = host.model === undefined ? undefined : models.get(host.model);
      return {
        cores: Math.max(best.cores, host.cores ?? model?.cores ?? 0),
        memoryGiB: Math.max(best.memoryGiB, host.memoryGiB ?? model?.memoryGiB ?? 0),
      };
    },
    { cores: 0, memoryGiB: 0 },
  );
  const racks = new Set(raw.hosts.map((host) => host.rack));
  const rooms = new Set(raw.hosts.map((host) => host.room));
  const vmOwners = new Map<string, string>();
  const services = new Map(raw.services.map((service) => [service.name, service]));

  raw.services.forEach((service, index) => {
    const tier = tiers.get(service.tier);
    if (tier === undefined) {
      add(
        'TMR_BLUEPRINT_UNKNOWN_TIER',
        ['services', index, 'tier'],
        `service "${service.name}" has unknown tier "${service.tier}"`,
        `${suggest(service.tier, tiers.keys())}use one of ${[...tiers.keys()].join(', ')} or define it under tiers`,
      );
    } else if (tier.mechanism === 'failover' && racks.size < 2 && rooms.size < 2) {
      add(
        'TMR_BLUEPRINT_SINGLE_DOMAIN',
        ['services', index, 'tier'],
        `service "${service.name}" is ${service.tier} but every host is in one failure domain (rack "${[...racks][0]}")`,
        'add hosts in a second rack or room, or choose the critical tier',
      );
    }
    if (service.datastore !== undefined && !datastoreNames.has(service.datastore)) {
      add(
        'TMR_BLUEPRINT_UNKNOWN_REF',
        ['services', index, 'datastore'],
        `service "${service.name}" names unknown datastore "${service.datastore}"`,
        `${suggest(service.datastore, datastoreNames)}define it under datastores`,
      );
    }
    if (service.network !== undefined && !networkNames.has(service.network)) {
      add(
        'TMR_BLUEPRINT_UNKNOWN_REF',
        ['services', index, 'network'],
        `service "${service.name}" names unknown network "${service.network}"`,
        `${suggest(service.network, networkNames)}define it under networks`,
      );
    }
    const seenDependencies = new Set<string>();
    service.dependsOn.forEach((dependency, dependencyIndex) => {
      const path = ['services', index, 'dependsOn', dependencyIndex];
      if (seenDependencies.has(dependency)) {
        add('TMR_BLUEPRINT_DUPLICATE', path, `service "${service.name}" lists "${dependency}" twice in dependsOn`, 'list each dependency once');
        return;
      }
      seenDependencies.add(dependency);
      const target = services.get(dependency);
      if (target === undefined) {
        add(
          'TMR_BLUEPRINT_UNKNOWN_REF',
          path,
          `service "${service.name}" depends on unknown service "${dependency}"`,
          `${suggest(dependency, serviceNames)}define it under services or remove it`,
        );
        return;
      }
      const own = tiers.get(service.tier);
      const theirs = tiers.get(target.tier);
      if (own !== undefined && theirs !== undefined && theirs.priority > own.priority) {
        add(
          'TMR_BLUEPRINT_TIER_INVERSION',
          path,
          theirs.sheddable
            ? `${service.tier} service "${service.name}" depends on ${target.tier} service "${dependency}", which is shed before it`
            : `${service.tier} service "${service.name}" depends on ${target.tier} service "${dependency}", which restarts after it in tier order (it will wait for "${dependency}")`,
          `raise "${dependency}" to ${service.tier} or lower "${service.name}"`,
          'warning',
        );
      }
    });
    service.vms.forEach((group, groupIndex) => {
      if (group.vcpu > largest.cores || group.memoryGiB > largest.memoryGiB) {
        add(
          'TMR_BLUEPRINT_VM_TOO_LARGE',
          ['services', index, 'vms', groupIndex, group.vcpu > largest.cores ? 'vcpu' : 'memoryGiB'],
          `a VM of "${service.name}" needs ${group.vcpu} vCPU / ${group.memoryGiB} GiB, the largest host has ${largest.cores} cores / ${largest.memoryGiB} GiB`,
          'split the service into more, smaller VMs or add a larger host model',
        );
      }
    });
    for (const vmName of vmNames(service.name, service.vms)) {
      const owner = vmOwners.get(vmName);
      if (owner !== undefined) {
        add(
          'TMR_BLUEPRINT_DUPLICATE',
          ['services', index, 'name'],
          `VM name "${vmName}" of service "${service.name}" is also a VM of "${owner}"`,
          'rename one of the services or its VM groups',
        );
      } else vmOwners.set(vmName, service.name);
    }
  });

  for (const cycle of dependencyCycles(raw)) {
    const first = raw.services.findIndex((service) => service.name === cycle[0]);
    const dependencyIndex = raw.services[first]!.dependsOn.indexOf(cycle[1]!);
    add(
      'TMR_BLUEPRINT_CYCLE',
      ['services', first, 'dependsOn', dependencyIndex],
      `dependency cycle: ${cycle.join(' → ')}`,
      'remove one dependsOn edge of the cycle; a restart order needs a dependency to start first',
    );
  }

  const endpoints = new Set([...serviceNames, ...networkNames]);
  raw.flows.forEach((flow, index) => {
    for (const end of ['from', 'to'] as const) {
      if (!endpoints.has(flow[end])) {
        add(
          'TMR_BLUEPRINT_UNKNOWN_REF',
          ['flows', index, end],
          `flow ${flow.from} → ${flow.to} names unknown service or network "${flow[end]}"`,
          `${suggest(flow[end], endpoints)}name a service or a network of the blueprint`,
        );
      }
    }
  });
  return problems;
}

/** Each elementary cycle found by a depth-first search, reported once, starting at its first service. */
function dependencyCycles(raw: RawBlueprint): string[][] {
  const edges = new Map(raw.services.map((service) => [service.name, service.dependsOn]));
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const visit = (name: string): void => {
    state.set(name, 'open');
    stack.push(name);
    for (const next of edges.get(name) ?? []) {
      if (!edges.has(next)) continue;
      const nextState = state.get(next);
      if (nextState === 'open') {
        const cycle = stack.slice(stack.indexOf(next));
        const key = [...cycle].sort().join(',');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...cycle, next]);
        }
      } else if (nextState === undefined) visit(next);
    }
    stack.pop();
    state.set(name, 'done');
  };
  // An explicit bound: a blueprint holds at most 10,000 services, so recursion depth is bounded too.
  for (const service of raw.services) if (!state.has(service.name)) visit(service.name);
  return cycles.slice(0, 20);
}

function closest(name: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 5) return 99;
  const row = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}
