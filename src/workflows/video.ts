/**
 * Video cut analysis (`analyzeCuts`): probe, detect shots in one resumable decoding pass (status: seconds of video
 * analysed), then build, score and thumbnail the clips and write `cuts.json`.
 */
import { proxyActivities } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { CutAnalysis } from '../activities/video/analyze-clips';
import type { DetectCheckpoint, DetectedShots } from '../activities/video/detect-shots';
import { analyzeCutsInput, type AnalyzeCutsInput } from '../shared/video-inputs';
import { JobControl, boundedRetry, interruptibleActivityOptions, validateInput } from './job-control';

const quick = proxyActivities<typeof activities>({
  startToCloseTimeout: '2 minutes',
  retry: boundedRetry,
});

const clipWork = proxyActivities<typeof activities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '1 minute',
  retry: boundedRetry,
});

const { detectShots } = proxyActivities<typeof activities>(interruptibleActivityOptions);

export type AnalyzeCutsResult =
  (CutAnalysis & { outcome: 'completed' }) | { outcome: 'cancelled'; secondsAnalysed: number };

/** Default output folder: next to the video, named after it. */
function defaultOutputDir(video: string): string {
  const slash = video.lastIndexOf('/');
  const name = video.slice(slash + 1).replace(/\.[^.]+$/, '');
  return `${slash >= 0 ? video.slice(0, slash + 1) : ''}${name}-cuts`;
}

export async function analyzeCuts(rawInput: AnalyzeCutsInput): Promise<AnalyzeCutsResult> {
  const input = validateInput('analyzeCuts', analyzeCutsInput, rawInput);
  const job = new JobControl<AnalyzeCutsResult>({
    type: 'analyzeCuts',
    progress: { done: 0, total: 0, unit: 'seconds' },
    stage: 'probing',
  });
  return job.run(
    async () => {
      await job.checkpoint();
      const info = await quick.probeVideoFile({ video: input.video });
      const seconds = Math.round(info.durationMs / 1000);
      job.setProgress(0, seconds);
      job.setStage(
        'detecting shots',
        `${info.width}×${info.height} ${info.codec}, ${info.fps} fps, ${(info.durationMs / 1000).toFixed(1)} s`,
      );
      const shots = await job.runResumable<DetectCheckpoint, DetectedShots>((resumeFrom) =>
        detectShots({ video: input.video, info, threshold: input.threshold, resumeFrom }),
      );
      job.setProgress(seconds, seconds);
      job.setStage('scoring clips', `${shots.boundaries.length} boundaries in ${shots.framesAnalysed} frames`);
      const analysis = await clipWork.analyzeClips({
        video: input.video,
        outputDir: input.outputDir ?? defaultOutputDir(input.video),
        info,
        shots,
        maxClipSeconds: input.maxClipSeconds,
        minClipSeconds: input.minClipSeconds,
      });
      job.setMessage(`${analysis.clipsCreated} clips, ${analysis.cutFrames.length} boundaries → ${analysis.results}`);
      return { outcome: 'completed', ...analysis };
    },
    () => ({ outcome: 'cancelled', secondsAnalysed: job.status.progress.done }),
  );
}
