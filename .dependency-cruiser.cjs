/**
 * The import stack of src/ (docs/architecture.md). Each folder may import only the folders listed
 * for it; everything else is an upward or sideways import and fails `npm test`. No cycle anywhere,
 * type-only imports included.
 *
 *   errors ← model ← ports ← capacity, detect, report
 *          ← control (capacity, detect) and plan (capacity)   — siblings: never each other
 *          ← analysis (control, plan)
 *          ← adapters: substrate/twin, substrate/qemu, substrate/remote, substrate/vsphere, journal, runtime (ports, model only)
 *          ← vsphere (import, plan, apply, drift and migrate-plan of a vSphere estate: analysis and substrate/vsphere)
 *          ← notify (alerts and their receivers: ports, model, errors, dto only)
 *          ← drill/sim ← drill/lab ← service ← api, cli, web
 *   dto (the API's response shapes, zod) stands alone: api validates with it, web reads its types
 */
const LAYERS = {
  errors: [],
  model: ['errors'],
  ports: ['errors', 'model'],
  capacity: ['errors', 'model', 'ports'],
  detect: ['errors', 'model', 'ports'],
  report: ['errors', 'model', 'ports'],
  control: ['errors', 'model', 'ports', 'capacity', 'detect'],
  plan: ['errors', 'model', 'ports', 'capacity'],
  analysis: ['errors', 'model', 'ports', 'capacity', 'control', 'plan'],
  'substrate/twin': ['errors', 'model', 'ports'],
  'substrate/qemu': ['errors', 'model', 'ports'],
  'substrate/remote': ['errors', 'model', 'ports'],
  'substrate/vsphere': ['errors', 'model', 'ports'],
  journal: ['errors', 'model', 'ports'],
  runtime: ['errors', 'model', 'ports'],
  notify: ['errors', 'model', 'ports', 'dto'],
  vsphere: ['errors', 'model', 'ports', 'capacity', 'control', 'plan', 'analysis', 'substrate/vsphere', 'journal', 'runtime'],
  'drill/sim': ['errors', 'model', 'ports', 'capacity', 'detect', 'report', 'control', 'plan', 'analysis', 'substrate/twin', 'journal'],
  'drill/lab': ['errors', 'model', 'ports', 'capacity', 'report', 'control', 'plan', 'analysis', 'substrate/twin', 'substrate/qemu', 'journal', 'runtime', 'drill/sim'],
  service: ['errors', 'model', 'ports', 'capacity', 'detect', 'report', 'control', 'plan', 'analysis', 'substrate/twin', 'substrate/remote', 'journal', 'runtime', 'drill/sim', 'notify'],
  api: ['errors', 'model', 'ports', 'capacity', 'detect', 'report', 'control', 'plan', 'analysis', 'substrate/twin', 'substrate/remote', 'journal', 'runtime', 'drill/sim', 'service', 'dto', 'notify'],
  dto: [],
  web: ['errors', 'ports', 'report', 'dto'],
  cli: ['*'],
};

const escape = (folder) => folder.replace(/\//g, '\\/');
const FOLDERS = Object.keys(LAYERS);

/** One rule per layer: from that folder, any src/ import outside itself and its allowed folders is forbidden. */
const layerRules = FOLDERS.filter((folder) => !LAYERS[folder].includes('*')).map((folder) => {
  const allowed = [folder, ...LAYERS[folder]].map(escape).join('|');
  return {
    name: `layer-${folder}`,
    comment: `src/${folder} may import only ${LAYERS[folder].length ? LAYERS[folder].map((f) => `src/${f}`).join(', ') : 'itself'} (docs/architecture.md)`,
    severity: 'error',
    from: { path: `^src/${escape(folder)}/` },
    to: { path: '^src/', pathNot: `^src/(${allowed})/` },
  };
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No cycle among src/ files, type-only imports included (docs/architecture.md)',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-unknown-folder',
      comment: 'Every src/ file belongs to a layer of the stack: add its folder to .dependency-cruiser.cjs',
      severity: 'error',
      from: { path: '^src/', pathNot: `^src/(${FOLDERS.map(escape).join('|')})/` },
      to: {},
    },
    {
      name: 'web-reads-dto-types-only',
      comment: 'The dashboard imports only the types of src/dto (no zod in the browser bundle): use `import type`',
      severity: 'error',
      from: { path: '^src/web/' },
      to: { path: '^src/(dto|ports)/', dependencyTypesNot: ['type-only'] },
    },
    ...layerRules,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|out)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
