/**
 * Each file of test/fixtures/invalid/ is test/fixtures/valid/minimal.yaml with exactly one defect.
 * For each, validation reports the defect's code at the line and column of the offending node
 * (counted by hand from the fixture) with a message and a hint that say what to do.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { loadBlueprint, PROBLEM_CODES, type Problem, type ProblemCode } from '../../src/model/index.ts';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const repository = fileURLToPath(new URL('../../', import.meta.url));
const invalid = (name: string): string => `${fixtures}invalid/${name}`;
const minimalFile = `${fixtures}valid/minimal.yaml`;

interface Expectation {
  readonly file: string;
  readonly behaviour: string;
  readonly code: ProblemCode;
  readonly path: readonly (string | number)[];
  readonly line: number;
  readonly col: number;
  readonly message: readonly string[];
  readonly hint: readonly string[];
  /** Errors in all; more than one only where the defect has a second, honest consequence. */
  readonly errors?: number;
}

const expectations: readonly Expectation[] = [
  {
    file: 'yaml-syntax.yaml',
    behaviour: 'a missing colon is a YAML syntax error at the key that lacks it',
    code: 'TMR_BLUEPRINT_YAML',
    path: [],
    line: 55,
    col: 5,
    message: ['YAML syntax', 'Implicit keys need to be on a single line'],
    hint: ['colon'],
  },
  {
    file: 'duplicate-host.yaml',
    behaviour: 'a second host of one name is reported at its name, pointing back to the first',
    code: 'TMR_BLUEPRINT_DUPLICATE',
    path: ['hosts', 2, 'name'],
    line: 32,
    col: 11,
    message: ['duplicate host name "r1-h1"', 'first defined at hosts[0], line 22'],
    hint: ['give each host its own name'],
  },
  {
    file: 'duplicate-service.yaml',
    behaviour: 'a second service of one name is reported at its name, with its clashing VM names',
    code: 'TMR_BLUEPRINT_DUPLICATE',
    path: ['services', 2, 'name'],
    line: 65,
    col: 11,
    message: ['duplicate service name "ehr-db"', 'first defined at services[0], line 44'],
    hint: ['give each service its own name'],
    // Both services named ehr-db also have a VM named ehr-db-1, which is reported too.
    errors: 2,
  },
  {
    file: 'duplicate-datastore.yaml',
    behaviour: 'a second datastore of one name is reported at its name, pointing back to the first',
    code: 'TMR_BLUEPRINT_DUPLICATE',
    path: ['datastores', 1, 'name'],
    line: 40,
    col: 11,
    message: ['duplicate datastore name "ds-1"', 'first defined at datastores[0], line 38'],
    hint: ['give each datastore its own name'],
  },
  {
    file: 'unknown-depends-on.yaml',
    behaviour: 'a dependency on an unknown service is reported at the dependsOn entry with a suggestion',
    code: 'TMR_BLUEPRINT_UNKNOWN_REF',
    path: ['services', 1, 'dependsOn', 0],
    line: 57,
    col: 9,
    message: ['service "ehr-app" depends on unknown service "ehr-bd"'],
    hint: ['did you mean "ehr-db"?'],
  },
  {
    file: 'unknown-power-feed.yaml',
    behaviour: 'a host fed by an unknown power feed is reported at its powerFeed with a suggestion',
    code: 'TMR_BLUEPRINT_UNKNOWN_REF',
    path: ['hosts', 2, 'powerFeed'],
    line: 36,
    col: 16,
    message: ['host "r2-h1" names unknown power feed "gen-2"'],
    hint: ['did you mean "gen-1"?', 'powerFeeds'],
  },
  {
    file: 'unknown-datastore.yaml',
    behaviour: 'a service on an unknown datastore is reported at its datastore with a suggestion',
    code: 'TMR_BLUEPRINT_UNKNOWN_REF',
    path: ['services', 1, 'datastore'],
    line: 58,
    col: 16,
    message: ['service "ehr-app" names unknown datastore "ds-2"'],
    hint: ['did you mean "ds-1"?', 'datastores'],
  },
  {
    file: 'unknown-tier.yaml',
    behaviour: 'a misspelt tier is reported at the tier with the tier it probably means',
    code: 'TMR_BLUEPRINT_UNKNOWN_TIER',
    path: ['services', 1, 'tier'],
    line: 54,
    col: 11,
    message: ['service "ehr-app" has unknown tier "critcal"'],
    hint: ['did you mean "critical"?', 'continuous, critical, standard, deferred'],
  },
  {
    file: 'dependency-cycle.yaml',
    behaviour: 'a cycle of three services is printed whole, at the first dependsOn edge of the cycle',
    code: 'TMR_BLUEPRINT_CYCLE',
    path: ['services', 0, 'dependsOn', 0],
    line: 48,
    col: 9,
    message: ['dependency cycle: ehr-db → directory → ehr-app → ehr-db'],
    hint: ['remove one dependsOn edge'],
  },
  {
    file: 'vm-too-large-vcpu.yaml',
    behaviour: 'a VM with more vCPU than any host has cores is reported at its vcpu',
    code: 'TMR_BLUEPRINT_VM_TOO_LARGE',
    path: ['services', 1, 'vms', 0, 'vcpu'],
    line: 62,
    col: 15,
    message: ['"ehr-app" needs 48 vCPU', 'the largest host has 32 cores'],
    hint: ['smaller VMs', 'larger host model'],
  },
  {
    file: 'vm-too-large-memory.yaml',
    behaviour: 'a VM with more memory than any host is reported at its memoryGiB',
    code: 'TMR_BLUEPRINT_VM_TOO_LARGE',
    path: ['services', 0, 'vms', 0, 'memoryGiB'],
    line: 51,
    col: 20,
    message: ['"ehr-db" needs 8 vCPU / 512 GiB', '256 GiB'],
    hint: ['smaller VMs', 'larger host model'],
  },
  {
    file: 'single-failure-domain.yaml',
    behaviour: 'a continuous service in a blueprint of one rack and one room is reported at its tier',
    code: 'TMR_BLUEPRINT_SINGLE_DOMAIN',
    path: ['services', 0, 'tier'],
    line: 45,
    col: 11,
    message: ['service "ehr-db" is continuous', 'one failure domain', 'rack "r1"'],
    hint: ['second rack or room'],
  },
  {
    file: 'unknown-flow-service.yaml',
    behaviour: 'a flow to an unknown service is reported at the end that names it',
    code: 'TMR_BLUEPRINT_UNKNOWN_REF',
    path: ['flows', 0, 'to'],
    line: 67,
    col: 9,
    message: ['flow ehr-app → billing', 'unknown service or network "billing"'],
    hint: ['name a service or a network'],
  },
  {
    file: 'unknown-field.yaml',
    behaviour: 'a misspelt field is reported at its key, not at its value on the next line',
    code: 'TMR_BLUEPRINT_SCHEMA',
    path: ['services', 1, 'dependOn'],
    line: 56,
    col: 5,
    message: ['services.1: unknown field "dependOn"'],
    hint: ['check its spelling', 'tomaranai schema'],
  },
  {
    file: 'wrong-type.yaml',
    behaviour: 'a word where a number belongs is reported as a wrong type at the value, not as missing',
    code: 'TMR_BLUEPRINT_SCHEMA',
    path: ['hostModels', 0, 'cores'],
    line: 11,
    col: 12,
    message: ['hostModels.0.cores', 'expected number, received string'],
    hint: ['tomaranai schema'],
  },
  {
    file: 'missing-required.yaml',
    behaviour: 'a missing required field is reported at the entry that lacks it, naming the field',
    code: 'TMR_BLUEPRINT_SCHEMA',
    path: ['services', 1, 'vendor'],
    line: 53,
    col: 5,
    message: ['services.1.vendor: required field is missing'],
    hint: ['add "vendor"'],
  },
  {
    file: 'duplicate-key.yaml',
    behaviour: 'a key given twice in one mapping is a YAML error at the second one',
    code: 'TMR_BLUEPRINT_YAML',
    path: [],
    line: 26,
    col: 5,
    message: ['Map keys must be unique'],
    hint: ['a key appears twice'],
  },
];

function errorsOf(file: string): Problem[] {
  const result = loadBlueprint(readFileSync(file));
  expect(result.ok).toBe(false);
  return result.ok ? [] : result.problems.filter((problem) => problem.severity === 'error');
}

describe('validating a blueprint with one defect', () => {
  it('has an expectation for every file of the invalid corpus', () => {
    const files = readdirSync(`${fixtures}invalid`).filter((name) => name.endsWith('.yaml'));
    expect(files.sort()).toEqual(expectations.map((expectation) => expectation.file).sort());
  });

  it('finds the minimal blueprint valid, without warnings', () => {
    const result = loadBlueprint(readFileSync(minimalFile));
    expect(result.ok ? result.warnings : result.problems).toEqual([]);
    expect(result.ok).toBe(true);
  });

  for (const expectation of expectations) {
    it(`${expectation.file}: ${expectation.behaviour}`, () => {
      const errors = errorsOf(invalid(expectation.file));
      expect(errors).toHaveLength(expectation.errors ?? 1);
      for (const error of errors) expect(error.code).toBe(expectation.code);
      const first = errors[0]!;
      expect({ path: first.path, line: first.line, col: first.col }).toEqual({
        path: expectation.path,
        line: expectation.line,
        col: expectation.col,
      });
      for (const text of expectation.message) expect(first.message).toContain(text);
      for (const text of expectation.hint) expect(first.hint).toContain(text);
    });
  }

  it('covers every check the issue asks for', () => {
    const covered = new Set(expectations.map((expectation) => expectation.code));
    const asked: ProblemCode[] = [
      'TMR_BLUEPRINT_YAML',
      'TMR_BLUEPRINT_DUPLICATE',
      'TMR_BLUEPRINT_UNKNOWN_REF',
      'TMR_BLUEPRINT_UNKNOWN_TIER',
      'TMR_BLUEPRINT_CYCLE',
      'TMR_BLUEPRINT_VM_TOO_LARGE',
      'TMR_BLUEPRINT_SINGLE_DOMAIN',
      'TMR_BLUEPRINT_SCHEMA',
    ];
    for (const code of asked) {
      expect(PROBLEM_CODES[code]).toBeDefined();
      expect(covered.has(code)).toBe(true);
    }
  });
});

/** Runs the CLI in-process and captures what it prints. */
async function run(argv: readonly string[]): Promise<{ exitCode: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const exitCode = await main(argv, { out: (text) => (out += text), err: (text) => (err += text) });
  return { exitCode, out, err };
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('tomaranai validate', () => {
  it('prints FILE:LINE:COL: message (hint) per problem and exits 1 for an invalid blueprint', async () => {
    const file = invalid('dependency-cycle.yaml');
    const { exitCode, out } = await run(['validate', file]);
    expect(exitCode).toBe(1);
    const lines = out.trimEnd().split('\n');
    const result = loadBlueprint(readFileSync(file));
    expect(lines).toHaveLength(result.ok ? 0 : result.problems.length);
    const format = new RegExp(`^${escapeRegExp(file)}:(\\d+):(\\d+): (.+) \\((.+)\\)$`);
    for (const line of lines) expect(line).toMatch(format);
    expect(lines[0]).toBe(
      `${file}:48:9: dependency cycle: ehr-db → directory → ehr-app → ehr-db ` +
        '(remove one dependsOn edge of the cycle; a restart order needs a dependency to start first)',
    );
    // The cycle's tier inversion (continuous directory waits for critical ehr-app) is a warning.
    expect(lines[1]).toMatch(/^.+:71:9: warning: continuous service "directory" depends on critical service "ehr-app"/);
  });

  it('prints the defect of every invalid fixture at its position, every line as FILE:LINE:COL: message (hint)', async () => {
    for (const expectation of expectations) {
      const file = invalid(expectation.file);
      const { exitCode, out } = await run(['validate', file]);
      expect(exitCode).toBe(1);
      expect(out).toContain(`${file}:${expectation.line}:${expectation.col}: `);
      for (const line of out.trimEnd().split('\n')) expect(line).toMatch(/^.+:\d+:\d+: .+ \(.+\)$/);
    }
  });

  it('prints nothing on stdout and exits 0 for a valid blueprint', async () => {
    const { exitCode, out, err } = await run(['validate', minimalFile]);
    expect(exitCode).toBe(0);
    expect(out).toBe('');
    expect(err).toContain('valid: 2 services, 3 VMs, 3 hosts in 1 rooms');
  });

  it('reports a missing file as a problem and exits 1', async () => {
    const file = `${fixtures}no-such-blueprint.yaml`;
    const { exitCode, out } = await run(['validate', file]);
    expect(exitCode).toBe(1);
    expect(out).toBe(`${file}:1:1: no such file (give the path of a blueprint YAML file, e.g. blueprints/university-hospital.yaml)\n`);
  });

  it('prints the problems as one JSON document with --json', async () => {
    const file = invalid('unknown-tier.yaml');
    const { exitCode, out } = await run(['validate', '--json', file]);
    expect(exitCode).toBe(1);
    const report = JSON.parse(out) as { file: string; valid: boolean; problems: Problem[] };
    expect(report.valid).toBe(false);
    expect(report.problems.map((problem) => [problem.code, problem.line, problem.col])).toEqual([
      ['TMR_BLUEPRINT_UNKNOWN_TIER', 54, 11],
    ]);
  });
});

describe('the shipped blueprints', () => {
  it('university-hospital.yaml is valid: 52 services, 74 VMs', async () => {
    const file = `${repository}blueprints/university-hospital.yaml`;
    const result = loadBlueprint(readFileSync(file));
    if (!result.ok) expect.fail(result.problems.map((problem) => `${problem.line}:${problem.col} ${problem.message}`).join('\n'));
    expect(result.blueprint.services).toHaveLength(52);
    expect(result.blueprint.vms).toHaveLength(74);
    expect(result.warnings.every((warning) => warning.severity === 'warning')).toBe(true);
    expect((await run(['validate', file])).exitCode).toBe(0);
  });

  it('regional-hospital.yaml is valid', async () => {
    const file = `${repository}blueprints/regional-hospital.yaml`;
    const result = loadBlueprint(readFileSync(file));
    if (!result.ok) expect.fail(result.problems.map((problem) => `${problem.line}:${problem.col} ${problem.message}`).join('\n'));
    expect(result.blueprint.services.length).toBeGreaterThan(0);
    expect((await run(['validate', file])).exitCode).toBe(0);
  });
});
