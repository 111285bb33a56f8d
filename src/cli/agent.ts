/**
 * `tomaranai agent`: the host agent itself (`--host H`, run by the lab inside each host's
 * namespace, or by systemd on a hospital's host), `agent certs` (mutual-TLS certificates for the
 * control plane and every agent) and `agent install --print` (a systemd unit and the steps to
 * install an agent by hand).
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { HostAgent } from '../substrate/qemu/agent.ts';
import { issueAgentCertificates, parseCertificateHosts, readAgentTls } from '../substrate/qemu/agent-tls.ts';
import { LabLayout, readManifest, readToken } from '../substrate/qemu/lab.ts';
import type { CliIo } from './io.ts';
import { TomaranaiError } from '../errors/index.ts';

export function registerAgentCommands(program: Command, io: CliIo, setExit: (code: number) => void): void {
  const agent = program
    .command('agent')
    .description('the host agent of one host (the lab starts it inside the host namespace; systemd on a real host)')
    .option('--host <name>', 'the host it runs on')
    .option('--lab <dir>', 'lab directory', '')
    .action(async (options: { host?: string; lab: string }) => {
      if (options.host === undefined) {
        io.err('error: required option --host <name> not specified\n');
        return setExit(1);
      }
      const layout = layoutOf(options.lab);
      const manifest = await readManifest(layout);
      if (manifest === null) return report(io, setExit, new TomaranaiError('TMR_LAB_NOT_UP', `no lab is up in ${layout.root} (no lab.json)`, 'run `tomaranai lab up blueprints/lab.yaml` as root'));
      // With certificates the agent serves only mutual TLS; the bearer token stays as a second factor.
      const tls = manifest.tlsDirectory === undefined ? undefined : readAgentTls(manifest.tlsDirectory, options.host);
      const host = new HostAgent({ layout, manifest, host: options.host, token: await readToken(layout), ...(tls === undefined ? {} : { tls }) });
      await host.start();
      await new Promise<void>((resolveSignal) => {
        process.once('SIGTERM', resolveSignal);
        process.once('SIGINT', resolveSignal);
      });
      await host.close();
    });

  agent
    .command('certs')
    .description('issue a CA, the control plane\'s client certificate and one server certificate per host (mutual TLS; needs openssl)')
    .requiredOption('--out <dir>', 'where to write ca.pem, ca.key, control-plane.pem/.key and HOST.pem/.key')
    .requiredOption('--hosts <list>', 'hosts, comma-separated: a,b or a=10.0.0.11,b=10.0.0.12 (an address is added to the certificate)')
    .action(async (options: { out: string; hosts: string }) => {
      try {
        const files = await issueAgentCertificates({ out: resolve(options.out), hosts: parseCertificateHosts(options.hosts) });
        io.out(`${files.join('\n')}\n`);
        io.err('keep ca.key offline: only `agent certs` needs it; give each host its own HOST.pem, HOST.key and ca.pem\n');
      } catch (error) {
        if (error instanceof TomaranaiError) return report(io, setExit, error);
        throw error;
      }
    });

  agent
    .command('install')
    .description('print a systemd unit for the agent and how to install it')
    .option('--print', 'print the unit and the steps (nothing is installed)', false)
    .option('--prefix <dir>', 'where Tomaranai is installed', '/opt/tomaranai')
    .action((options: { print: boolean; prefix: string }) => {
      if (!options.print) {
        io.err('tomaranai agent install only prints (--print): review the unit, then install it as the steps say\n');
        return setExit(1);
      }
      // --host and --lab are the agent command's own options (the host's name; its state directory).
      const parent = agent.opts<{ host?: string; lab: string }>();
      io.out(agentInstallText({ host: parent.host ?? 'HOST', lab: parent.lab === '' ? '/var/lib/tomaranai' : parent.lab, prefix: options.prefix }));
    });
}

/** The systemd unit and the steps to install an agent on a host. */
export function agentInstallText(options: { host: string; lab: string; prefix: string }): string {
  return `# Install the Tomaranai host agent on ${options.host}:
#   1. Node 20 and Tomaranai in ${options.prefix} (npm ci --omit=dev); QEMU, nftables, iproute2.
#   2. The shared datastore mounted where the control plane's lab manifest says; the manifest and
#      the agent token in ${options.lab} (lab.json, secret/agent-token, mode 0600).
#   3. Certificates for mutual TLS in ${options.lab}/secret/tls: ca.pem, ${options.host}.pem,
#      ${options.host}.key (0600) — from \`tomaranai agent certs --out DIR --hosts ${options.host},…\`
#      run once on the control plane, or issued by the hospital's own CA (the control plane's
#      client certificate must have CN=tomaranai-control-plane).
#   4. Save the unit below as /etc/systemd/system/tomaranai-agent.service, then:
#        systemctl daemon-reload && systemctl enable --now tomaranai-agent
#   The agent judges leases and heartbeats by its monotonic clock: a stepped wall clock changes no
#   decision, but keep NTP (chrony) running for readable logs.
[Unit]
Description=Tomaranai host agent (${options.host})
Documentation=file://${options.prefix}/docs/real-vms.md
After=network-online.target remote-fs.target
Wants=network-online.target

[Service]
Type=simple
Environment=TOMARANAI_AGENT=1
ExecStart=/usr/bin/node ${options.prefix}/bin/tomaranai.js agent --lab ${options.lab} --host ${options.host}
Restart=always
RestartSec=1
# The VMs are daemonized QEMUs that must outlive a restart of the agent (it reattaches to them):
# stop only the agent's own process, never the VMs in its cgroup.
KillMode=process
# The agent fences itself (kills its VMs) when it loses both the control plane and the datastore:
# it must keep running under memory pressure.
OOMScoreAdjust=-900

[Install]
WantedBy=multi-user.target
`;
}

function layoutOf(directory: string): LabLayout {
  return new LabLayout(directory === '' ? (process.env.TOMARANAI_LAB ?? undefined) : directory);
}

function report(io: CliIo, setExit: (code: number) => void, error: TomaranaiError): void {
  io.err(`${error.code}: ${error.message} (${error.hint})\n`);
  setExit(1);
}
