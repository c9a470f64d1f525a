/**
 * From detected segments to clips: black stretches are dropped, shots shorter than the minimum join a neighbour,
 * and shots longer than the maximum are split into even parts.
 */
export { buildClips, shotsFromSegments, planClipSpans, type Span } from '../../shared/video-clips';
