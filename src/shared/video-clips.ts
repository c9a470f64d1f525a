/**
 * From detected segments to clips: black stretches are dropped, shots shorter than the minimum join a neighbour,
 * and shots longer than the maximum are split into even parts. Pure and deterministic, so the workflow can count
 * the clips it is about to score (its progress) with the same rule the scoring activity uses.
 */

/** A stretch between boundaries as the shot detector reports it (see shot-detector.ts). */
export interface SegmentLike {
  startFrame: number;
  startMs: number;
  black: boolean;
  changeSum: number;
  frames: number;
}

export interface Span {
  /** First frame, and the frame after the last (exclusive). */
  startFrame: number;
  endFrame: number;
  startMs: number;
  endMs: number;
  /** Mean content change per frame (0–255): how much moves. */
  change: number;
}

/** The shots (non-black segments) with their ends, given where the video ends. */
export function shotsFromSegments(segments: SegmentLike[], endFrame: number, endMs: number): Span[] {
  return segments.flatMap((segment, i) => {
    if (segment.black) return [];
    const next = segments[i + 1];
    return [
      {
        startFrame: segment.startFrame,
        endFrame: next?.startFrame ?? endFrame,
        startMs: segment.startMs,
        endMs: next?.startMs ?? endMs,
        change: segment.frames ? segment.changeSum / segment.frames : 0,
      },
    ];
  });
}

const frames = (span: Span) => span.endFrame - span.startFrame;

function join(a: Span, b: Span): Span {
  const total = frames(a) + frames(b) || 1;
  return {
    startFrame: Math.min(a.startFrame, b.startFrame),
    endFrame: Math.max(a.endFrame, b.endFrame),
    startMs: Math.min(a.startMs, b.startMs),
    endMs: Math.max(a.endMs, b.endMs),
    change: (a.change * frames(a) + b.change * frames(b)) / total,
  };
}

/** Clips that follow the shots, each between `minMs` and `maxMs` long where the shots allow it. */
export function buildClips(shots: Span[], options: { minMs: number; maxMs: number }): Span[] {
  const merged: Span[] = [];
  for (const shot of shots) {
    const previous = merged.at(-1);
    const touches = previous && previous.endFrame === shot.startFrame;
    const short = (span: Span) => span.endMs - span.startMs < options.minMs;
    if (previous && touches && (short(shot) || short(previous))) merged[merged.length - 1] = join(previous, shot);
    else merged.push(shot);
  }
  return merged.flatMap((clip) => {
    const duration = clip.endMs - clip.startMs;
    const parts = Math.max(1, Math.ceil(duration / options.maxMs - 1e-9));
    if (parts === 1) return [clip];
    // Even parts by frame; times follow the frames proportionally (exact for a constant frame rate).
    return Array.from({ length: parts }, (_, i) => {
      const startFrame = clip.startFrame + Math.round((i * frames(clip)) / parts);
      const endFrame = clip.startFrame + Math.round(((i + 1) * frames(clip)) / parts);
      const at = (frame: number) => clip.startMs + Math.round(((frame - clip.startFrame) / frames(clip)) * duration);
      return { startFrame, endFrame, startMs: at(startFrame), endMs: at(endFrame), change: clip.change };
    });
  });
}

/** What clip planning needs of the detection pass' result. */
export interface ShotsLike {
  segments: SegmentLike[];
  framesAnalyzed?: number;
  /** The name `framesAnalyzed` had in results recorded before its rename. */
  framesAnalysed?: number;
  lastFrameMs: number;
}

/** The clips of the detected shots: the spans the scoring pass scores, in order. */
export function planClipSpans(
  shots: ShotsLike,
  info: { fps: number; durationMs: number; startMs?: number; timelineStartMs?: number },
  options: { minClipSeconds: number; maxClipSeconds: number },
): Span[] {
  const endMs = Math.max(shots.lastFrameMs + Math.round(1000 / info.fps), 0);
  const framesAnalyzed = shots.framesAnalyzed ?? shots.framesAnalysed ?? 0;
  // Times are on the container's timeline: a stream that starts late ends late by as much.
  const streamEndMs = info.durationMs + Math.max(0, (info.startMs ?? 0) - (info.timelineStartMs ?? info.startMs ?? 0));
  return buildClips(shotsFromSegments(shots.segments, framesAnalyzed, Math.min(endMs, streamEndMs)), {
    minMs: options.minClipSeconds * 1000,
    maxMs: options.maxClipSeconds * 1000,
  });
}
