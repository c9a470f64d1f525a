/**
 * Shot boundaries from small decoded frames, ours rather than ffmpeg's scene score (which changes between ffmpeg
 * versions), in the spirit of PySceneDetect's content and adaptive detectors:
 * - each frame's content change is the mean absolute RGB difference from the previous frame (0–255);
 * - a hard cut is a frame whose change is both large (≥ `minContent`) and several times (`threshold`) the average
 *   change of the `window` frames on either side, so steady fast motion (large changes everywhere) is not a cut;
 * - fades to and from black are boundaries where the mean brightness crosses `blackLevel`; the black stretch
 *   between them is not part of any shot.
 * Decisions lag `window` frames behind the input (the look-ahead). The state is plain data, so an interrupted
 * analysis can carry on from a checkpoint. Memory stays flat: only the recent frames and the segments found so far.
 */

export interface DetectorOptions {
  threshold: number;
  minContent: number;
  window: number;
  /** A new cut within this many frames of the last boundary is ignored (flashes, double triggers). */
  minShotFrames: number;
  blackLevel: number;
}

export const DEFAULT_DETECTOR: DetectorOptions = {
  threshold: 3,
  minContent: 15,
  window: 2,
  minShotFrames: 8,
  blackLevel: 12,
};

export type BoundaryKind = 'cut' | 'fade-out' | 'fade-in';

export interface Boundary {
  frame: number;
  ms: number;
  kind: BoundaryKind;
}

/** A stretch between boundaries: a shot, or black (between a fade-out and a fade-in). */
export interface Segment {
  startFrame: number;
  startMs: number;
  black: boolean;
  /** Sum and count of the content changes inside it, for the motion measure. */
  changeSum: number;
  frames: number;
}

interface PendingFrame {
  frame: number;
  ms: number;
  change: number;
  luma: number;
}

export interface DetectorState {
  pending: PendingFrame[];
  /** The previous frame's pixels (base64), to diff the next one against. */
  previous?: string;
  lastBoundaryFrame: number;
  inBlack: boolean;
  boundaries: Boundary[];
  segments: Segment[];
}

export function initialDetectorState(): DetectorState {
  return { pending: [], lastBoundaryFrame: -Infinity, inBlack: false, boundaries: [], segments: [] };
}

/** Mean absolute difference per channel between two RGB frames of the same size. */
export function contentChange(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

export function meanLuma(rgb: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < rgb.length; i += 3) sum += 0.299 * rgb[i]! + 0.587 * rgb[i + 1]! + 0.114 * rgb[i + 2]!;
  return sum / (rgb.length / 3);
}

export class ShotDetector {
  readonly state: DetectorState;
  /** The previous frame, kept as bytes while running; encoded into the state only by {@link snapshot}. */
  private previous: Uint8Array | undefined;

  constructor(
    readonly options: DetectorOptions,
    state: DetectorState = initialDetectorState(),
  ) {
    this.state = structuredClone(state);
    this.previous = state.previous ? Buffer.from(state.previous, 'base64') : undefined;
  }

  /** The state as plain data (a copy), for a checkpoint: what a new detector carries on from. */
  snapshot(): DetectorState {
    const snapshot = structuredClone(this.state);
    if (this.previous) snapshot.previous = Buffer.from(this.previous).toString('base64');
    return snapshot;
  }

  /** Feeds one decoded frame (RGB, small); boundaries are decided `window` frames later. */
  push(frame: number, ms: number, pixels: Uint8Array): void {
    const previous = this.previous;
    const change = previous && previous.length === pixels.length ? contentChange(previous, pixels) : 0;
    this.previous = pixels;
    this.state.pending.push({ frame, ms, change, luma: meanLuma(pixels) });
    const { window } = this.options;
    while (this.state.pending.length > 2 * window + 1) this.state.pending.shift();
    // The frame `window` back now has its look-ahead: decide it.
    if (this.state.pending.length > window) this.decide(this.state.pending.length - 1 - window);
  }

  /** Decides the last frames, which wait for look-ahead that will not come (end of the video). */
  finish(): void {
    const { length } = this.state.pending;
    for (let at = Math.max(0, length - this.options.window); at < length; at++) this.decide(at);
    this.state.pending = [];
  }

  private decide(at: number): void {
    const frame = this.state.pending[at]!;
    const { threshold, minContent, window, minShotFrames, blackLevel } = this.options;
    if (this.state.segments.length === 0) this.open(frame, frame.luma < blackLevel);

    const black = frame.luma < blackLevel;
    if (black !== this.state.inBlack) {
      this.boundary(frame, black ? 'fade-out' : 'fade-in', black);
      return;
    }
    const neighbours = this.state.pending
      .slice(Math.max(0, at - window), at)
      .concat(this.state.pending.slice(at + 1, at + 1 + window))
      .map((p) => p.change);
    const average = neighbours.length ? neighbours.reduce((a, b) => a + b, 0) / neighbours.length : 0;
    const ratio = average > 0 ? frame.change / average : frame.change > 0 ? Infinity : 0;
    const isCut =
      !black &&
      frame.change >= minContent &&
      ratio >= threshold &&
      frame.frame - this.state.lastBoundaryFrame >= minShotFrames;
    if (isCut) this.boundary(frame, 'cut', false);
    else {
      const segment = this.state.segments.at(-1)!;
      segment.changeSum += frame.change;
      segment.frames += 1;
    }
  }

  private boundary(frame: PendingFrame, kind: BoundaryKind, black: boolean): void {
    this.state.boundaries.push({ frame: frame.frame, ms: frame.ms, kind });
    this.state.lastBoundaryFrame = frame.frame;
    this.state.inBlack = black;
    this.open(frame, black);
  }

  private open(frame: PendingFrame, black: boolean): void {
    const current = this.state.segments.at(-1);
    // The first frame of the video opens the first segment; a boundary on that same frame just relabels it.
    if (current && current.startFrame === frame.frame) {
      current.black = black;
      return;
    }
    this.state.segments.push({ startFrame: frame.frame, startMs: frame.ms, black, changeSum: 0, frames: 1 });
    this.state.inBlack = black;
  }
}
