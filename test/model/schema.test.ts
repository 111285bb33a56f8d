/**
 * `tomaranai schema` prints a JSON Schema that editors use to complete and check blueprints. It is
 * generated from the zod schema, so these tests check that it is a JSON Schema of the right shape
 * and that it agrees with the shipped blueprints: every key they use is one the schema allows,
 * and every key the schema requires is there. (A full JSON Schema validator would be a new
 * dependency; keys and required fields are what an editor's completion relies on.)
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { main } from '../../src/cli/main.ts';
import { blueprintJsonSchema } from '../../src/model/index.ts';

interface SchemaNode {
  readonly type?: string;
  readonly properties?: Record<string, SchemaNode>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean | SchemaNode;
  readonly items?: SchemaNode;
}

const root = fileURLToPath(new URL('../../', import.meta.url));
const blueprintFiles = [
  'blueprints/university-hospital.yaml',
  'blueprints/regional-hospital.yaml',
  'test/fixtures/valid/minimal.yaml',
];
const readYaml = (file: string): Record<string, unknown> => parse(readFileSync(`${root}${file}`, 'utf8')) as Record<string, unknown>;
const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** Keys the schema does not allow and required keys that are missing, each as a dotted path. */
function keyProblems(schema: SchemaNode, value: unknown, path = ''): string[] {
  const problems: string[] = [];
  if (Array.isArray(value) && schema.items !== undefined) {
    value.forEach((item, index) => problems.push(...keyProblems(schema.items!, item, `${path}[${index}]`)));
  }
  if (!isObject(value)) return problems;
  for (const required of schema.required ?? []) {
    if (!(required in value)) problems.push(`${path}.${required}: required by the schema, missing`);
  }
  for (const [key, item] of Object.entries(value)) {
    const property = schema.properties?.[key];
    if (property !== undefined) problems.push(...keyProblems(property, item, `${path}.${key}`));
    else if (isObject(schema.additionalProperties)) problems.push(...keyProblems(schema.additionalProperties, item, `${path}.${key}`));
    else if (schema.additionalProperties === false) problems.push(`${path}.${key}: not allowed by the schema`);
  }
  return problems;
}

describe('the blueprint JSON Schema', () => {
  const schema = blueprintJsonSchema() as SchemaNode & Record<string, unknown>;

  it('names its dialect, its id and its title, and describes an object', () => {
    expect(schema.$schema).toMatch(/^https:\/\/json-schema\.org\/draft\/2020-12\/schema$/);
    expect(schema.$id).toMatch(/^https:\/\//);
    expect(schema.title).toBe('Tomaranai blueprint');
    expect(schema.type).toBe('object');
    expect(schema.additionalProperties).toBe(false);
  });

  it('has properties for every section of a blueprint, each list with an object schema for its items', () => {
    const properties = schema.properties!;
    for (const key of ['apiVersion', 'kind', 'name', 'tiers', 'hostModels', 'powerFeeds', 'hosts', 'datastores', 'networks', 'services', 'flows']) {
      expect(properties[key], key).toBeDefined();
    }
    for (const key of ['hostModels', 'powerFeeds', 'hosts', 'datastores', 'networks', 'services', 'flows']) {
      expect(properties[key]!.type, key).toBe('array');
      expect(properties[key]!.items?.type, key).toBe('object');
      expect(properties[key]!.items?.additionalProperties, key).toBe(false);
    }
    expect(Object.keys(properties.services!.items!.properties!)).toEqual(
      expect.arrayContaining(['name', 'tier', 'vendor', 'dependsOn', 'datastore', 'vms']),
    );
    expect(Object.keys(properties.hosts!.items!.properties!)).toEqual(
      expect.arrayContaining(['name', 'model', 'room', 'rack', 'powerFeed']),
    );
    expect(Object.keys(properties.flows!.items!.properties!)).toEqual(expect.arrayContaining(['from', 'to', 'port']));
  });

  it('requires what a blueprint cannot do without, and not what has a default', () => {
    expect(schema.required).toEqual(
      expect.arrayContaining(['apiVersion', 'kind', 'name', 'powerFeeds', 'hosts', 'datastores', 'services']),
    );
    expect(schema.required).not.toContain('flows');
    expect(schema.required).not.toContain('tiers');
    expect(schema.properties!.services!.items!.required).not.toContain('dependsOn');
  });

  it('is plain JSON, the same after a round trip', () => {
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
  });

  for (const file of blueprintFiles) {
    it(`allows every key of ${file} and finds every required key there`, () => {
      const blueprint = readYaml(file);
      const properties = schema.properties!;
      // The sections the issue names, checked on their own first, so that a failure reads plainly.
      for (const key of Object.keys(blueprint)) expect(properties, `top-level "${key}"`).toHaveProperty(key);
      for (const [section, list] of [
        ['services', blueprint.services],
        ['hosts', blueprint.hosts],
      ] as const) {
        const allowed = Object.keys(properties[section]!.items!.properties!);
        for (const item of list as Record<string, unknown>[]) {
          for (const key of Object.keys(item)) expect(allowed, `${section}: "${key}"`).toContain(key);
        }
      }
      expect(keyProblems(schema, blueprint)).toEqual([]);
    });
  }

  it('rejects a misspelt field, as validation does', () => {
    const blueprint = parse(readFileSync(`${root}test/fixtures/invalid/unknown-field.yaml`, 'utf8')) as unknown;
    expect(keyProblems(schema, blueprint)).toEqual(['.services[1].dependOn: not allowed by the schema']);
  });

  it('is what `tomaranai schema` prints', async () => {
    let out = '';
    const exitCode = await main(['schema'], { out: (text) => (out += text), err: () => undefined });
    expect(exitCode).toBe(0);
    expect(JSON.parse(out)).toEqual(schema);
  });
});
