import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_PROGRESS_REPORTS, MIN_REPORT_GAP_MS, ProgressMilestones } from '../../src/activities/progress-milestones';

/** The `done` values at which an activity stepping once a second for `seconds` seconds reports to its workflow. */
function reportsOfOneSecondSteps(seconds: number, startAt = 0): number[] {
  const progress = (done: number) => ({ done, total: seconds, unit: 'seconds' });
  const milestones = new ProgressMilestones(progress(startAt), 0);
  const reported: number[] = [];
  for (let done = startAt + 1; done <= seconds; done++) {
    if (milestones.due(progress(done), done * 1000)) reported.push(done);
  }
  return reported;
}

describe('progress milestones', () => {
  it('a 24 h activity reports nine times, once per tenth, and not at its end', () => {
    const reported = reportsOfOneSecondSteps(86_400);
    assert.equal(reported.length, MAX_PROGRESS_REPORTS);
    assert.deepEqual(
      reported,
      [1, 2, 3, 4, 5, 6, 7, 8, 9].map((tenth) => tenth * 8_640),
    );
  });

  it('the 600 s simpleTest of the field test reports nine times (it sent 300 signals before)', () => {
    assert.deepEqual(reportsOfOneSecondSteps(600), [60, 120, 180, 240, 300, 360, 420, 480, 540]);
  });

  it('an activity shorter than the gap sends nothing; a short one sends no more than one per gap', () => {
    assert.deepEqual(reportsOfOneSecondSteps(MIN_REPORT_GAP_MS / 1000 - 1), []);
    assert.deepEqual(reportsOfOneSecondSteps(30), [10, 20]);
  });

  it('an activity resumed half-way reports only the tenths above its resume point', () => {
    assert.deepEqual(reportsOfOneSecondSteps(600, 300), [360, 420, 480, 540]);
  });

  it('a step that jumps several tenths sends one report', () => {
    const milestones = new ProgressMilestones({ done: 0, total: 100, unit: 'pages' }, 0);
    assert.equal(milestones.due({ done: 75, total: 100, unit: 'pages' }, 60_000), true);
    assert.equal(milestones.due({ done: 79, total: 100, unit: 'pages' }, 120_000), false);
    assert.equal(milestones.due({ done: 80, total: 100, unit: 'pages' }, 180_000), true);
  });

  it('without a known total there is no milestone to report', () => {
    const milestones = new ProgressMilestones({ done: 0, total: 0, unit: 'pairs' }, 0);
    for (let done = 1; done <= 1000; done++) {
      assert.equal(milestones.due({ done, total: 0, unit: 'pairs' }, done * 60_000), false);
    }
  });
});
