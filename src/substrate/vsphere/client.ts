/**
 * A typed vSphere client on the SOAP API (vim25), for the calls Tomaranai needs: the service
 * content, a session (login, logout, keep-alive), the property collector over container views with
 * paging (RetrievePropertiesEx / ContinueRetrievePropertiesEx), the change stream (CreateFilter,
 * WaitForUpdatesEx with versions) and tasks followed to their end. Every loop is bounded.
 */
import { TomaranaiError } from '../../errors/index.ts';
import { SoapTransport, SOAP_WAIT_GRACE_MS, type SoapEndpoint } from './soap.ts';
import { child, children, element, moRef, path, refOf, text, type MoRef, type XmlNode } from './xml.ts';

export interface VsphereCredentials {
  readonly username: string;
  readonly password: string;
}

export interface ServiceContent {
  readonly rootFolder: MoRef;
  readonly propertyCollector: MoRef;
  readonly viewManager: MoRef;
  readonly sessionManager: MoRef;
  readonly customFieldsManager: MoRef | null;
  readonly taskManager: MoRef | null;
  readonly apiVersion: string;
  readonly fullName: string;
}

/** One object of a property collector answer: its reference and the properties asked for (unset ones absent). */
export interface ObjectContent {
  readonly obj: MoRef;
  readonly props: ReadonlyMap<string, XmlNode>;
}

export interface PropertyChange {
  readonly name: string;
  readonly op: 'add' | 'remove' | 'assign' | 'indirectRemove';
  readonly val: XmlNode | undefined;
}

export interface ObjectUpdate {
  readonly kind: 'enter' | 'leave' | 'modify';
  readonly obj: MoRef;
  readonly changes: readonly PropertyChange[];
}

export interface UpdateBatch {
  readonly version: string;
  readonly updates: readonly ObjectUpdate[];
  /** The server had more than one answer's worth: ask again at once with `version`. */
  readonly truncated: boolean;
}

export interface TaskProgress {
  readonly task: MoRef;
  readonly state: 'queued' | 'running' | 'success' | 'error';
  readonly progress: number | null;
}

/** Pages of a property retrieval (a vCenter answers at most this many objects at a time). */
export const RETRIEVE_PAGE_OBJECTS = 500;
/** A bound on pages: 1,000 × 500 objects is beyond any hospital's inventory. */
const RETRIEVE_MAX_PAGES = 1_000;
export const TASK_TIMEOUT_MS = 120_000;
const TASK_POLL_MS = 100;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const TRAVERSE_VIEW =
  '<selectSet xsi:type="TraversalSpec"><name>view</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet>';

export class VsphereClient {
  private readonly soap: SoapTransport;
  private content: ServiceContent | null = null;

  constructor(readonly endpoint: SoapEndpoint) {
    this.soap = new SoapTransport(endpoint);
  }

  get serviceContent(): ServiceContent {
    if (this.content === null) throw new Error('VsphereClient: connect() first');
    return this.content;
  }

  /** Reads the service content and logs in; the session cookie rides on every later call. */
  async connect(credentials: VsphereCredentials): Promise<ServiceContent> {
    const response = await this.soap.call('RetrieveServiceContent', `<RetrieveServiceContent>${moRef('_this', { type: 'ServiceInstance', value: 'ServiceInstance' })}</RetrieveServiceContent>`);
    const value = child(response, 'returnval');
    const need = (key: string): MoRef => {
      const ref = refOf(child(value, key));
      if (ref === null) throw new TomaranaiError('TMR_VSPHERE_FAULT', `RetrieveServiceContent: the answer has no ${key}; is this a vCenter /sdk endpoint?`);
      return ref;
    };
    this.content = {
      rootFolder: need('rootFolder'),
      propertyCollector: need('propertyCollector'),
      viewManager: need('viewManager'),
      sessionManager: need('sessionManager'),
      customFieldsManager: refOf(child(value, 'customFieldsManager')),
      taskManager: refOf(child(value, 'taskManager')),
      apiVersion: path(value, 'about', 'apiVersion'),
      fullName: path(value, 'about', 'fullName'),
    };
    await this.soap.call(
      'Login',
      `<Login>${moRef('_this', this.content.sessionManager)}${element('userName', credentials.username)}${element('password', credentials.password)}</Login>`,
    );
    if (this.soap.sessionCookie === null) throw new TomaranaiError('TMR_VSPHERE_LOGIN', 'vCenter accepted the login but set no session cookie');
    return this.content;
  }

  async logout(): Promise<void> {
    if (this.content === null || this.soap.sessionCookie === null) return;
    try {
      await this.soap.call('Logout', `<Logout>${moRef('_this', this.content.sessionManager)}</Logout>`);
    } finally {
      this.soap.clearSession();
      this.soap.close();
    }
  }

  /** Keeps the session alive (vCenter ends idle sessions after 30 minutes by default); returns the server's time. */
  async keepAlive(): Promise<string> {
    const response = await this.soap.call('CurrentTime', `<CurrentTime>${moRef('_this', { type: 'ServiceInstance', value: 'ServiceInstance' })}</CurrentTime>`);
    return text(child(response, 'returnval'));
  }

  /** Any method; `body` is the complete `<Method>` element. */
  call(method: string, body: string, timeoutMs?: number): Promise<XmlNode | undefined> {
    return this.soap.call(method, body, timeoutMs);
  }

  /** A container view of every object of `type` under the root folder (caller destroys it). */
  async createView(type: string): Promise<MoRef> {
    const { viewManager, rootFolder } = this.serviceContent;
    const response = await this.soap.call(
      'CreateContainerView',
      `<CreateContainerView>${moRef('_this', viewManager)}${moRef('container', rootFolder)}${element('type', type)}${element('recursive', true)}</CreateContainerView>`,
    );
    const ref = refOf(child(response, 'returnval'));
    if (ref === null) throw new TomaranaiError('TMR_VSPHERE_FAULT', `CreateContainerView(${type}) returned no view`);
    return ref;
  }

  async destroyView(view: MoRef): Promise<void> {
    await this.soap.call('DestroyView', `<DestroyView>${moRef('_this', view)}</DestroyView>`);
  }

  /** Every object of `type` with the given properties, page by page. */
  async retrieveAll(type: string, paths: readonly string[]): Promise<ObjectContent[]> {
    const view = await this.createView(type);
    try {
      const objectSet = `<objectSet>${moRef('obj', view)}<skip>true</skip>${TRAVERSE_VIEW}</objectSet>`;
      return await this.retrieve(type, paths, objectSet);
    } finally {
      await this.destroyView(view);
    }
  }

  /** The given properties of some objects of one type. */
  async retrieveObjects(refs: readonly MoRef[], paths: readonly string[]): Promise<ObjectContent[]> {
    if (refs.length === 0) return [];
    const objectSet = refs.map((ref) => `<objectSet>${moRef('obj', ref)}<skip>false</skip></objectSet>`).join('');
    return this.retrieve(refs[0]!.type, paths, objectSet);
  }

  private async retrieve(type: string, paths: readonly string[], objectSet: string): Promise<ObjectContent[]> {
    const { propertyCollector } = this.serviceContent;
    const propSet = `<propSet>${element('type', type)}${paths.map((name) => element('pathSet', name)).join('')}</propSet>`;
    const first = await this.soap.call(
      'RetrievePropertiesEx',
      `<RetrievePropertiesEx>${moRef('_this', propertyCollector)}<specSet>${propSet}${objectSet}</specSet><options>${element('maxObjects', RETRIEVE_PAGE_OBJECTS)}</options></RetrievePropertiesEx>`,
    );
    const objects: ObjectContent[] = [];
    let result = child(first, 'returnval');
    for (let page = 0; page < RETRIEVE_MAX_PAGES; page++) {
      objects.push(...children(result, 'objects').map(objectContent));
      const token = path(result, 'token');
      if (token === '') return objects;
      const next = await this.soap.call(
        'ContinueRetrievePropertiesEx',
        `<ContinueRetrievePropertiesEx>${moRef('_this', propertyCollector)}${element('token', token)}</ContinueRetrievePropertiesEx>`,
      );
      result = child(next, 'returnval');
    }
    throw new TomaranaiError('TMR_VSPHERE_FAULT', `RetrievePropertiesEx(${type}): more than ${RETRIEVE_MAX_PAGES} pages`);
  }

  /** A property filter on the session's collector: `specXml` is the `<spec>` content (propSet + objectSet). */
  async createFilter(specXml: string): Promise<MoRef> {
    const { propertyCollector } = this.serviceContent;
    const response = await this.soap.call(
      'CreateFilter',
      `<CreateFilter>${moRef('_this', propertyCollector)}<spec>${specXml}</spec><partialUpdates>false</partialUpdates></CreateFilter>`,
    );
    const ref = refOf(child(response, 'returnval'));
    if (ref === null) throw new TomaranaiError('TMR_VSPHERE_FAULT', 'CreateFilter returned no filter');
    return ref;
  }

  /** A filter on every object of `type` (through a container view) and the given properties. */
  async watch(type: string, paths: readonly string[]): Promise<MoRef> {
    const view = await this.createView(type);
    return this.createFilter(
      `<propSet>${element('type', type)}${paths.map((name) => element('pathSet', name)).join('')}</propSet><objectSet>${moRef('obj', view)}<skip>true</skip>${TRAVERSE_VIEW}</objectSet>`,
    );
  }

  /** A filter on properties of one object (no traversal), e.g. the task manager's recentTask. */
  async watchObject(ref: MoRef, paths: readonly string[]): Promise<MoRef> {
    return this.createFilter(`<propSet>${element('type', ref.type)}${paths.map((name) => element('pathSet', name)).join('')}</propSet><objectSet>${moRef('obj', ref)}<skip>false</skip></objectSet>`);
  }

  async destroyFilter(filter: MoRef): Promise<void> {
    await this.soap.call('DestroyPropertyFilter', `<DestroyPropertyFilter>${moRef('_this', filter)}</DestroyPropertyFilter>`);
  }

  /**
   * The next changes after `version` ('' for the first, full set); waits up to `maxWaitS` on the
   * server. Null when nothing changed within the wait.
   */
  async waitForUpdates(version: string, maxWaitS: number): Promise<UpdateBatch | null> {
    const { propertyCollector } = this.serviceContent;
    const response = await this.soap.call(
      'WaitForUpdatesEx',
      `<WaitForUpdatesEx>${moRef('_this', propertyCollector)}${element('version', version)}<options>${element('maxWaitSeconds', maxWaitS)}${element('maxObjectUpdates', RETRIEVE_PAGE_OBJECTS)}</options></WaitForUpdatesEx>`,
      maxWaitS * 1000 + SOAP_WAIT_GRACE_MS,
    );
    const set = child(response, 'returnval');
    if (set === undefined) return null;
    const updates: ObjectUpdate[] = [];
    for (const filterSet of children(set, 'filterSet')) {
      for (const objectSet of children(filterSet, 'objectSet')) {
        const obj = refOf(child(objectSet, 'obj'));
        if (obj === null) continue;
        const changes = children(objectSet, 'changeSet').map((change) => ({
          name: path(change, 'name'),
          op: path(change, 'op') as PropertyChange['op'],
          val: child(change, 'val'),
        }));
        updates.push({ kind: path(objectSet, 'kind') as ObjectUpdate['kind'], obj, changes });
      }
    }
    return { version: path(set, 'version'), updates, truncated: path(set, 'truncated') === 'true' };
  }

  /** Starts a `*_Task` method and follows the task to its end; an error state throws with vCenter's message. */
  async runTask(method: string, body: string, onProgress?: (progress: TaskProgress) => void, timeoutMs = TASK_TIMEOUT_MS): Promise<XmlNode | undefined> {
    const response = await this.soap.call(method, body);
    const task = refOf(child(response, 'returnval'));
    if (task === null) throw new TomaranaiError('TMR_VSPHERE_FAULT', `${method} returned no task`);
    return this.waitForTask(task, method, onProgress, timeoutMs);
  }

  async waitForTask(task: MoRef, label: string, onProgress?: (progress: TaskProgress) => void, timeoutMs = TASK_TIMEOUT_MS): Promise<XmlNode | undefined> {
    const polls = Math.ceil(timeoutMs / TASK_POLL_MS);
    for (let poll = 0; poll < polls; poll++) {
      const [info] = await this.retrieveObjects([task], ['info']);
      const node = info?.props.get('info');
      const state = path(node, 'state') as TaskProgress['state'];
      const progress = path(node, 'progress');
      onProgress?.({ task, state, progress: progress === '' ? null : Number(progress) });
      if (state === 'success') return child(node, 'result');
      if (state === 'error') {
        const message = path(node, 'error', 'localizedMessage') || Object.keys((child(child(node, 'error'), 'fault') as Record<string, unknown> | undefined) ?? {}).join(' ');
        throw new TomaranaiError('TMR_VSPHERE_TASK_FAILED', `${label} (${task.value}) failed: ${message || 'no message'}`);
      }
      await sleep(TASK_POLL_MS);
    }
    throw new TomaranaiError('TMR_VSPHERE_TASK_FAILED', `${label} (${task.value}) did not finish within ${timeoutMs} ms`, 'vCenter may still finish it: check its task list, then run the command again');
  }
}

function objectContent(node: XmlNode): ObjectContent {
  const obj = refOf(child(node, 'obj'));
  if (obj === null) throw new TomaranaiError('TMR_VSPHERE_FAULT', 'RetrievePropertiesEx: an object without a reference');
  const props = new Map<string, XmlNode>();
  for (const property of children(node, 'propSet')) {
    const value = child(property, 'val');
    if (value !== undefined) props.set(path(property, 'name'), value);
  }
  return { obj, props };
}
