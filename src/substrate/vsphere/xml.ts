/**
 * The XML of vSphere's SOAP API, both ways: building request bodies from typed values (every text
 * escaped, every managed object reference typed) and reading fast-xml-parser's output through a
 * few accessors that never throw on a missing element (a property vCenter leaves unset is absent).
 */
import { XMLParser } from 'fast-xml-parser';

/** A parsed element: its text, or its children and attributes (`@_type`, `#text`). */
export type XmlNode = string | { readonly [key: string]: XmlNode | readonly XmlNode[] | undefined };

export interface MoRef {
  readonly type: string;
  readonly value: string;
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  // Prefixes stay: a property value carries both `type` (a reference's type) and `xsi:type`.
  removeNSPrefix: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
});

export function parseXml(text: string): XmlNode {
  return parser.parse(text) as XmlNode;
}

export function escapeXml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** `<tag>text</tag>`, the text escaped. */
export function element(tag: string, text: string | number | boolean): string {
  return `<${tag}>${escapeXml(String(text))}</${tag}>`;
}

/** A managed object reference: `<tag type="VirtualMachine">vm-42</tag>`. */
export function moRef(tag: string, ref: MoRef): string {
  return `<${tag} type="${escapeXml(ref.type)}">${escapeXml(ref.value)}</${tag}>`;
}

/** An element of a derived type: `<tag xsi:type="Type">…</tag>`. */
export function typed(tag: string, type: string, inner: string): string {
  return `<${tag} xsi:type="${escapeXml(type)}">${inner}</${tag}>`;
}

/** A child element (the first when repeated), or undefined. */
export function child(node: XmlNode | undefined, key: string): XmlNode | undefined {
  if (node === undefined || typeof node === 'string') return undefined;
  const value = node[key];
  if (Array.isArray(value)) return value[0] as XmlNode | undefined;
  return value as XmlNode | undefined;
}

/** Every child element of that name, as a list (one element or none included). */
export function children(node: XmlNode | undefined, key: string): readonly XmlNode[] {
  if (node === undefined || typeof node === 'string') return [];
  const value = node[key];
  if (value === undefined) return [];
  return Array.isArray(value) ? (value as readonly XmlNode[]) : [value as XmlNode];
}

/** The text of a node (an element with attributes keeps it under `#text`); '' when none. */
export function text(node: XmlNode | undefined): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node;
  const inner = node['#text'];
  return typeof inner === 'string' ? inner : inner === undefined ? '' : String(inner);
}

export function attribute(node: XmlNode | undefined, name: string): string | undefined {
  if (node === undefined || typeof node === 'string') return undefined;
  const value = node[`@_${name}`];
  return typeof value === 'string' ? value : undefined;
}

/** The text of a path of children, e.g. path(summary, 'hardware', 'numCpuCores'). */
export function path(node: XmlNode | undefined, ...keys: readonly string[]): string {
  let current = node;
  for (const key of keys) current = child(current, key);
  return text(current);
}

export function numberAt(node: XmlNode | undefined, ...keys: readonly string[]): number {
  const value = path(node, ...keys);
  return value === '' ? Number.NaN : Number(value);
}

export function refOf(node: XmlNode | undefined): MoRef | null {
  const value = text(node);
  const type = attribute(node, 'type');
  return value === '' || type === undefined ? null : { type, value };
}

/** The xsi:type of a polymorphic element (`ClusterAntiAffinityRuleSpec`), without its prefix. */
export function xsiType(node: XmlNode | undefined): string {
  if (node === undefined || typeof node === 'string') return '';
  const key = Object.keys(node).find((name) => name.startsWith('@_') && name.endsWith(':type'));
  const type = key === undefined ? '' : String(node[key]);
  return type.includes(':') ? type.slice(type.indexOf(':') + 1) : type;
}

/** The child whose name is `local` under any namespace prefix (`soapenv:Body`, `soap:Body`, `Body`). */
export function childAnyPrefix(node: XmlNode | undefined, local: string): XmlNode | undefined {
  if (node === undefined || typeof node === 'string') return undefined;
  const key = Object.keys(node).find((name) => name === local || name.endsWith(`:${local}`));
  return key === undefined ? undefined : child(node, key);
}
