/** `npm start` from nothing: starts its own dev server, a worker and the demo, then shuts everything down. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { CutAnalysis } from '../../src/activities/video/analyze-clips';
import { readMailbox } from '../../src/mail-sink/mailbox';
import { isListening } from '../../src/ports';
import { freePort, runProcess } from '../helpers/processes';

describe('npm start', () => {
  it('brings up a dev server and a worker, runs every demo job to completion, and stops cleanly', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'backroom-start-'));
    const port = await freePort();
    const uiPort = await freePort();
    const apiPort = await freePort();
    const { code, stdout, stderr } = await runProcess('npm', ['start'], {
      TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
      BACKROOM_DEV_SERVER_PORT: String(port),
      BACKROOM_DEV_UI_PORT: String(uiPort),
      BACKROOM_DATA_DIR: dataDir,
      BACKROOM_HEALTH_PORT: '0',
      BACKROOM_DEMO_EXIT: '1',
      BACKROOM_MAIL_SINK_PORT: String(await freePort()),
      BACKROOM_API_PORT: String(apiPort),
    });
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.match(stdout, /starting the local dev server/);
    assert.match(stdout, new RegExp(`Temporal UI: http://127\\.0\\.0\\.1:${uiPort}/namespaces/default/workflows`));
    assert.match(stdout, new RegExp(`HTTP API: http://127\\.0\\.0\\.1:${apiPort} `));
    assert.match(stdout, /paused simple-test-.* for 3 s/);
    const results = stdout.slice(stdout.indexOf('Results:'));
    for (const type of [
      'simpleTest',
      'mathCalculation',
      'systemHealthCheck',
      'stressTest',
      'generateSamplePages',
      'restoreBatch',
      'processMedia',
      'sendBulkEmail',
      'generateSyntheticData',
      'trainModel',
      'analyzeCuts',
    ]) {
      assert.match(results, new RegExp(`${type}\\s+completed`), results);
    }
    assert.match(results, /all checks passed/);
    assert.match(
      results,
      /trainModel\s+completed\s+4 epochs → models\/demo-\d+\/best\.json; held-out PSNR: input [\d.]+ dB/,
    );
    assert.match(results, /restoreBatch\s+completed\s+Restored 6 of 6 documents/);
    assert.ok(existsSync(path.join(dataDir, 'demo/restored/report.json')), 'the demo batch wrote its report');
    assert.match(stdout, /Mail sink on smtp:\/\/127\.0\.0\.1:\d+/);
    assert.match(results, /sendBulkEmail\s+completed\s+80 sent, 1 refused, 1 skipped/);
    const received = await readMailbox(path.join(dataDir, 'mail-sink'));
    assert.equal(new Set(received.map((m) => m.to[0])).size, 80, 'the sink has every demo message');
    // The cut analysis: the demo's video has hard cuts at 2, 4 and 6 s (frames 50, 100, 150 at 25 fps), no fades.
    assert.match(
      stdout,
      /Made demo\/cuts-demo\.mp4 for the cut analysis: 8\.00 s, hard cuts at 2\.00, 4\.00, 6\.00 s\./,
    );
    assert.match(results, /analyzeCuts\s+completed\s+4 clips, 3 boundaries → demo\/cuts\/cuts\.json/);
    const cuts = JSON.parse(readFileSync(path.join(dataDir, 'demo/cuts/cuts.json'), 'utf8')) as CutAnalysis;
    assert.deepEqual(cuts.cutFrames, [50, 100, 150], 'exactly the three cuts the demo video has');
    assert.deepEqual(
      cuts.boundaries.map((b) => b.kind),
      ['cut', 'cut', 'cut'],
    );
    assert.deepEqual(
      cuts.clips.map((clip) => [clip.startMs, clip.endMs]),
      [
        [0, 2000],
        [2000, 4000],
        [4000, 6000],
        [6000, 8000],
      ],
    );
    const table = results.slice(results.indexOf('Cuts in'));
    assert.match(table, /^Cuts in demo\/cuts-demo\.mp4 \(8\.00 s, 200 frames\): 3 of its 3 hard cuts found/m);
    assert.deepEqual(
      [...table.matchAll(/^\s+cut\s+([\d.]+)\s+(\d+)$/gm)].map((m) => [m[1], m[2]]),
      [
        ['2.00', '50'],
        ['4.00', '100'],
        ['6.00', '150'],
      ],
      table,
    );
    const clips = [...table.matchAll(/^\s+(\d+)\s+([\d.]+)–([\d.]+)\s+(0\.\d{3}|1\.000)$/gm)];
    assert.deepEqual(
      clips.map((m) => [m[1], m[2], m[3]]),
      [
        ['1', '0.00', '2.00'],
        ['2', '2.00', '4.00'],
        ['3', '4.00', '6.00'],
        ['4', '6.00', '8.00'],
      ],
      table,
    );
    for (const [i, clip] of cuts.clips.entries()) assert.equal(clips[i]?.[4], clip.visualScore.toFixed(3));
    assert.match(stdout, /Stopped cleanly\./);
    assert.equal(await isListening('127.0.0.1', port), false, 'the dev server is gone');
    assert.equal(await isListening('127.0.0.1', apiPort), false, 'the HTTP API is gone');
    assert.ok(existsSync(path.join(dataDir, 'temporal.db')), 'the dev server kept its database in the data dir');
  });
});
