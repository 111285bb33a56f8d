// `npm run eval:nab -- --corpus DIR --results OUT`: runs the shipped anomaly detector, with its
// shipped NAB thresholds, on any corpus in NAB's layout, writes NAB results files
// (OUT/<DETECTOR>/<group>/<DETECTOR>_<file>.csv: timestamp,value,anomaly_score,label), prints the
// thresholds it used, and scores the corpus at those thresholds when it has labels. Nothing is
// tuned on the corpus: this is how anyone scores the detector on series it never saw.

import { SHIPPED_NAB_THRESHOLDS } from '../src/detect/anomaly-tuning.ts';
import { NAB_PROFILES, scoreCorpus, type NabProfileName } from '../src/detect/nab-scorer.ts';
import { loadCorpusDirectory, runDetector, writeResultsFile } from './nab-corpus.ts';

/** The detector name in results paths, as NAB names its detectors' results directories. */
export const NAB_DETECTOR_NAME = 'tomaranai';

export interface CorpusRun {
  readonly resultsFiles: readonly string[];
  readonly thresholds: Readonly<Record<NabProfileName, number>>;
  /** Normalised NAB score per profile at the shipped thresholds; null for an unlabelled corpus. */
  readonly scores: Readonly<Record<NabProfileName, number>> | null;
}

export function parseCorpusArguments(argv: readonly string[]): { corpus: string; results: string } | null {
  const corpusAt = argv.indexOf('--corpus');
  const resultsAt = argv.indexOf('--results');
  if (corpusAt === -1 && resultsAt === -1) return null;
  const corpus = corpusAt === -1 ? undefined : argv[corpusAt + 1];
  const results = resultsAt === -1 ? undefined : argv[resultsAt + 1];
  if (corpus === undefined || corpus.startsWith('--') || results === undefined || results.startsWith('--')) {
    throw new Error('usage: npm run eval:nab -- --corpus DIR --results OUT   (DIR in NAB layout: DIR/data/<group>/<file>.csv)');
  }
  return { corpus, results };
}

/** Loads and checks the whole corpus before writing anything, so a bad corpus leaves OUT untouched. */
export function runOnCorpus(corpusDirectory: string, resultsDirectory: string, log: (line: string) => void = console.log): CorpusRun {
  const corpus = loadCorpusDirectory(corpusDirectory);
  const thresholds = SHIPPED_NAB_THRESHOLDS;
  log(`corpus ${corpusDirectory}: ${corpus.series.length} files, ${corpus.labelled ? 'labelled' : 'no labels/combined_windows.json (results only, no score)'}`);
  log(
    `detector ${NAB_DETECTOR_NAME} with its shipped defaults; thresholds used: ` +
      NAB_PROFILES.map((profile) => `${profile.name} ${thresholds[profile.name]}`).join(', '),
  );
  const scored = corpus.series.map((series) => ({ series, anomalyScores: runDetector(series) }));
  const resultsFiles = scored.map(({ series, anomalyScores }) => writeResultsFile(resultsDirectory, NAB_DETECTOR_NAME, series, anomalyScores));
  log(`wrote ${resultsFiles.length} results files under ${resultsDirectory}/${NAB_DETECTOR_NAME}/`);
  if (!corpus.labelled) return { resultsFiles, thresholds, scores: null };

  const nabSeries = scored.map(({ series, anomalyScores }) => ({ file: series.file, anomalyScores }));
  const scores = Object.fromEntries(
    NAB_PROFILES.map((profile) => [profile.name, scoreCorpus(nabSeries, profile, thresholds[profile.name]).normalisedScore]),
  ) as Record<NabProfileName, number>;
  const windowCount = nabSeries.reduce((sum, entry) => sum + entry.file.windows.length, 0);
  log(`NAB score at the shipped thresholds (${windowCount} windows), standard / low FP / low FN: ` +
    NAB_PROFILES.map((profile) => scores[profile.name].toFixed(1)).join(' / '));
  const standard = NAB_PROFILES[0]!;
  for (const fileScore of scoreCorpus(nabSeries, standard, thresholds.standard).perFile) {
    log(
      `  ${fileScore.name.padEnd(62)} raw ${fileScore.rawScore.toFixed(3).padStart(7)}  ` +
        `windows ${fileScore.windowsDetected}/${fileScore.windowsDetected + fileScore.windowsMissed}  FP rows ${fileScore.falsePositiveRows}`,
    );
  }
  return { resultsFiles, thresholds, scores };
}
