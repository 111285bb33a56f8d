/** Plain-text rendering of reports; the data stays in the report, display lives here. */
import type { DrillReport } from '../report/drill-report.ts';

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const render = (cells: readonly string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  return [render(headers), render(widths.map((width) => '-'.repeat(width))), ...rows.map(render)].join('\n');
}

const seconds = (value: number | null) => (value === null ? '—' : value >= 3600 ? `${(value / 3600).toFixed(1)} h` : `${value.toFixed(1)} s`);

export function formatDrillReport(report: DrillReport): string {
  const rows = report.services.map((service) => [
    service.name,
    service.tier + (service.effectiveTier ? `→${service.effectiveTier}` : ''),
    seconds(service.rtoTargetS),
    seconds(service.rtoMeasuredS),
    seconds(service.rpoTargetS),
    seconds(service.rpoMeasuredS),
    service.shed ? 'SHED' : service.met ? 'met' : 'MISSED',
    service.shed ? (service.reason ?? '') : (service.note ?? (service.affected ? '' : 'unaffected')),
  ]);
  const lines = [
    `Drill ${report.scenario} on ${report.blueprint} (${report.substrate}, seed ${report.seed})`,
    `Scenario: ${report.description}; fault at ${report.faultAtS.toFixed(1)} s, drill ended at ${report.endedAtS.toFixed(1)} s`,
    '',
    table(['service', 'tier', 'RTO target', 'RTO measured', 'RPO target', 'RPO measured', 'result', 'note'], rows),
    '',
    ...report.incidents.map(
      (incident) =>
        `Incident ${incident.kind} ${incident.target}: started ${incident.startedAtS.toFixed(1)} s, detected ${seconds(incident.detectedAtS === null ? null : incident.detectedAtS - incident.startedAtS)} later, fenced ${seconds(incident.fencedAtS === null ? null : incident.fencedAtS - incident.startedAtS)} after the fault, all recovered ${seconds(incident.recoveredAtS === null ? null : incident.recoveredAtS - incident.startedAtS)} after it; ${incident.vmsAffected} VMs affected`,
    ),
    ...report.incidents.flatMap((incident) => {
      const security = (incident as { security?: Record<string, unknown> }).security;
      if (security === undefined) return [];
      const at = (key: string) => (typeof security[key] === 'number' ? seconds(security[key] as number) : '—');
      const restore = security.restorePoint as { snapshotId?: string; takenAtS?: number; fellBack?: string } | undefined;
      return [
        ...(restore?.fellBack === undefined ? [] : [`  the restore ${restore.fellBack}`]),
        `  ransomware on ${incident.vm ?? incident.target}: detected ${at('detectionDelayS')} after encryption began; intrusion estimated at ${at('estimatedIntrusionAtS')} (true ${at('trueIntrusionAtS')}, error ${at('intrusionEstimateErrorS')}); quarantined at ${at('quarantinedAtS')} after ${String(security.attackerWrittenBeforeQuarantineMiB ?? '—')} MiB written by the attacker`,
        `  restored from ${restore?.snapshotId ?? '—'} (RPO ${at('rpoS')}, snapshot interval ${at('snapshotIntervalS')}); clean again ${at('timeToCleanRecoveryS')} after encryption began; ${String(security.systemsStayedUp ?? '—')} of ${String(security.systemsTotal ?? '—')} systems stayed up; snapshot deletions refused ${String(security.snapshotDeletionsRefused ?? 0)} of ${String(security.snapshotDeletionsAttempted ?? 0)}`,
      ];
    }),
    ...unscriptedLines(report),
    `Invariants: split brain ${report.invariants.splitBrain}, lost VMs ${report.invariants.lostVms}, immutable-snapshot violations ${report.invariants.immutableViolations}`,
    `Summary: ${report.summary.met} met, ${report.summary.missed} missed (${report.summary.shed} shed), ${report.summary.unaffected} unaffected`,
  ];
  return lines.join('\n');
}

/** Gray hosts (evidence, RTO from the verdict) and failed snapshots (RPO at risk), when the drill had any. */
function unscriptedLines(report: DrillReport): string[] {
  const lines: string[] = [];
  for (const gray of report.grayHosts ?? []) {
    const failing = gray.failing.map((copy) => `${copy.vm} ${Math.round(copy.unhealthyShare * 100)} %`).join(', ');
    lines.push(
      `Gray host ${gray.host}: degraded at ${gray.degradedAtS.toFixed(1)} s (${gray.failing.length} of ${gray.copies} copies failing: ${failing}; elsewhere ${Math.round(gray.estateFailingShare * 100)} %; CPU ready up to ${gray.cpuReadyPercentMax === null ? '—' : `${gray.cpuReadyPercentMax} %`}); ${gray.placedWhileDegraded} VMs placed on it while degraded; trusted again ${gray.trustedAgainAtS === null ? 'not yet' : `at ${gray.trustedAgainAtS.toFixed(1)} s`}`,
    );
    const back = report.services.filter((service) => service.rtoAfterDegradedS !== undefined).map((service) => `${service.name} ${seconds(service.rtoAfterDegradedS ?? null)}`);
    if (back.length > 0) lines.push(`  back after the verdict: ${back.join(', ')}`);
  }
  const failures = report.snapshotFailures ?? [];
  if (failures.length > 0) {
    const worst = [...failures].sort((a, b) => (b.rpoAtRiskMaxS ?? 0) - (a.rpoAtRiskMaxS ?? 0))[0]!;
    lines.push(`Snapshots failed for ${failures.length} VMs (${worst.reason}); first at ${failures[0]!.firstAtS.toFixed(1)} s; RPO at risk up to ${seconds(worst.rpoAtRiskMaxS)} (${worst.vm}, target ${seconds(worst.rpoTargetS)})`);
  }
  if (lines.length > 0) lines.push('');
  return lines;
}
