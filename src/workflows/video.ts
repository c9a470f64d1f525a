/**
 * Video cut analysis (`analyzeCuts`): probe, detect shots in one resumable decoding pass (status: seconds of video
 * analysed) that also keeps candidate frames for scoring, then build, score and thumbnail the clips from those
 * candidates, no second decode (status: clips scored), and write `cuts.json`. The video and the outputDir may each be
 * in the data dir or in a bucket (`s3://…`): the activities read and write through places.ts, and the workflow only
 * names them.
 */
import { patched, proxyActivities } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { CutAnalysis, ScoreCheckpoint } from '../activities/video/analyze-clips';
import type { DetectCheckpoint, DetectedShots } from '../activities/video/detect-shots';
import type { VideoInfo } from '../activities/video/probe';
import { planClipSpans } from '../shared/video-clips';
import { analyzeCutsInput, defaultCutsDir } from '../shared/video-inputs';
import { bounded, interruptible, interruptibleUntilDone, quick } from './activity-profiles';
import { defineJob } from './define-job';
import { CUTS_ONE_PASS, CUTS_STATE_FOLDER, INTERRUPTIBLE_SINGLE_ACTIVITY_JOBS } from './patches';

// Probing (ffprobe) and scoring clips in one go (runs from before pause) heartbeat while they wait on ffmpeg.
const { probeVideoFile, analyzeClips } = proxyActivities<typeof activities>(bounded);

// Writing a partial cuts.json is one small file; claiming the output folder reads and writes one small record.
const { writePartialCuts: writePartial, claimCutsFolder } = proxyActivities<typeof activities>(quick);

const { detectShots } = proxyActivities<typeof activities>(interruptibleUntilDone);

// Scoring stops between two clips for a pause or cancel; a bad clip fails for good after a few tries.
const { analyzeClipsResumable } = proxyActivities<typeof activities>(interruptible);

export type AnalyzeCutsResult =
  | (CutAnalysis & { outcome: 'completed' })
  | {
      outcome: 'cancelled';
      secondsAnalyzed: number;
      /** Boundaries found before the cancel, all in the partial `cuts.json` at `results`. */
      boundariesFound?: number;
      results?: string;
    };

/** The frames detection decoded (a result recorded before the rename, by a job in flight, says `framesAnalysed`). */
function framesAnalyzed(shots: DetectedShots): number {
  return shots.framesAnalyzed ?? shots.framesAnalysed ?? 0;
}

export const analyzeCuts = defineJob<typeof analyzeCutsInput, AnalyzeCutsResult>({
  type: 'analyzeCuts',
  input: analyzeCutsInput,
  progress: { done: 0, total: 0, unit: 'seconds' },
  stage: 'probing',
  setup: ({ job, input }) => {
    const interruptible = patched(INTERRUPTIBLE_SINGLE_ACTIVITY_JOBS);
    const outputDir = input.outputDir ?? defaultCutsDir(input.video);
    // How far the job got, for the partial cuts.json of a cancel.
    let info: VideoInfo | undefined;
    let detecting: DetectCheckpoint | undefined;
    let shots: DetectedShots | undefined;
    let scoring: ScoreCheckpoint | undefined;
    let partialCuts: CutAnalysis | undefined;
    let finished = false;
    // Set once detection covered the whole video (status then counts clips, not seconds).
    let detectedSeconds: number | undefined;

    /** Writes cuts.json, marked partial, with the boundaries (and scored clips) found before the cancel. */
    const writePartialCuts = async () => {
      // Nothing to write before the probe; and a job cancelled while held after it finished has its full cuts.json.
      if (!info || finished) return;
      partialCuts = await writePartial({
        video: input.video,
        outputDir,
        info,
        boundaries: shots?.boundaries ?? detecting?.detector.boundaries ?? [],
        framesAnalyzed: (shots && framesAnalyzed(shots)) ?? detecting?.nextIndex ?? 0,
        analyzedMs: shots ? info.durationMs : (detecting?.nextMs ?? 0),
        clips: scoring?.clips,
      });
    };

    return {
      async work() {
        await job.checkpoint();
        info = await probeVideoFile({ video: input.video });
        // Another analysis' thumbnails and cuts.json in outputDir: refused before detection (runs from before: not).
        if (patched(CUTS_STATE_FOLDER)) await claimCutsFolder({ ...input, outputDir });
        const seconds = Math.round(info.durationMs / 1000);
        job.setProgress(0, seconds);
        job.setStage(
          'detecting shots',
          `${info.width}×${info.height} ${info.codec}, ${info.fps} fps, ${(info.durationMs / 1000).toFixed(1)} s`,
        );
        const probed = info;
        // One decode serves both passes: detection keeps the frames scoring needs (runs from before: two passes).
        const candidates = patched(CUTS_ONE_PASS) ? { outputDir } : undefined;
        shots = await job.runResumable<DetectCheckpoint, DetectedShots>(
          (resumeFrom) =>
            detectShots({ video: input.video, info: probed, threshold: input.threshold, resumeFrom, candidates }),
          { onCheckpoint: (checkpoint) => (detecting = checkpoint) },
        );
        detectedSeconds = seconds;
        // Scoring counts clips (its heartbeats carry clips scored), so status never sits at 100 % while it runs.
        const clipCount = planClipSpans(shots, info, input).length;
        job.setProgress(0, clipCount, 'clips');
        job.setStage(
          'scoring clips',
          `${clipCount} clips from ${shots.boundaries.length} boundaries in ${framesAnalyzed(shots)} frames`,
        );
        const request = {
          video: input.video,
          outputDir,
          info,
          shots,
          maxClipSeconds: input.maxClipSeconds,
          minClipSeconds: input.minClipSeconds,
        };
        // Scoring stops between two clips for a pause or cancel (runs from before that: in one go).
        const analysis = interruptible
          ? await job.runResumable<ScoreCheckpoint, CutAnalysis>(
              (resumeFrom) => analyzeClipsResumable({ ...request, resumeFrom, reportProgress: true }),
              { onCheckpoint: (checkpoint) => (scoring = checkpoint) },
            )
          : await analyzeClips(request);
        finished = true;
        job.setMessage(`${analysis.clipsCreated} clips, ${analysis.cutFrames.length} boundaries → ${analysis.results}`);
        return { outcome: 'completed', ...analysis };
      },
      cancelled: () => ({
        outcome: 'cancelled',
        secondsAnalyzed: detectedSeconds ?? job.status.progress.done,
        ...(partialCuts && { boundariesFound: partialCuts.boundaries.length, results: partialCuts.results }),
      }),
      cleanup: interruptible ? writePartialCuts : undefined,
    };
  },
});
