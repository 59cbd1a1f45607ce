/**
 * Progress on stderr while packing: live bars when stderr is a terminal,
 * nothing otherwise (logs stay clean for pipes and CI).
 */
import cliProgress from 'cli-progress';
import type { ExportProgress } from '../pipeline/export.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export interface ProgressView {
  update(p: ExportProgress): void;
  stop(): void;
}

/**
 * Bars for runs (with the total when known) and documents, plus copied files
 * (`copy`) or filled datums (`fill`); modes that move no files get no third bar.
 */
export function progressView(stream: NodeJS.WriteStream, totalRuns?: number, mode: 'manifest' | 'copy' | 'ignore' | 'fill' = 'manifest'): ProgressView {
  if (!stream.isTTY) return { update() {}, stop() {} };
  const multi = new cliProgress.MultiBar(
    {
      stream,
      clearOnComplete: false,
      hideCursor: true,
      fps: 8,
      format: (options, params, payload: { label: string; text: string }) => {
        if (params.total > 0) {
          const bar = cliProgress.Format.BarFormat(params.progress, options);
          return `${payload.label.padEnd(10)} ${bar} ${payload.text}`;
        }
        return `${payload.label.padEnd(10)} ${payload.text}`;
      },
    },
    cliProgress.Presets.shades_classic,
  );
  const runs = multi.create(totalRuns ?? 0, 0, { label: 'runs', text: '0' });
  const docs = multi.create(0, 0, { label: 'documents', text: '0' });
  const files = mode === 'copy' || mode === 'fill' ? multi.create(0, 0, { label: mode === 'fill' ? 'filled' : 'copied', text: mode === 'fill' ? '0 datums' : '0 files' }) : undefined;
  return {
    update(p) {
      const done = p.runsDone + p.runsFailed;
      runs.update(done, { label: 'runs', text: `${done}${totalRuns ? `/${totalRuns}` : ''} (${p.runsFailed} failed)${p.currentRun ? ` ${p.currentRun}` : ''}` });
      docs.update(p.documents, { label: 'documents', text: `${p.documents} (${formatBytes(p.bytes)})` });
      if (mode === 'fill') files?.update(p.datumsFilled, { label: 'filled', text: `${p.datumsFilled} datums (${formatBytes(p.bytesFilled)})` });
      else files?.update(p.filesCopied, { label: 'copied', text: `${p.filesCopied} files (${formatBytes(p.bytesCopied)})` });
    },
    stop() {
      multi.stop();
    },
  };
}
