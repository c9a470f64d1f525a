/**
 * `npm run chaos`: the full chaos run (see chaos-run.ts), about 8 minutes on a 2-core machine. Exits 1 when a check
 * fails. BACKROOM_CHAOS_SEED picks another kill schedule; BACKROOM_CHAOS_KEEP=1 keeps the data dir for a look.
 */
import { FULL_CHAOS, formatChaosReport, runChaos } from './chaos-run';

async function main(): Promise<void> {
  const seed = Number(process.env.BACKROOM_CHAOS_SEED ?? FULL_CHAOS.seed);
  const report = await runChaos({ ...FULL_CHAOS, seed });
  console.log(`\n${formatChaosReport(report)}`);
  console.log(`longest stall per job (s): ${JSON.stringify(report.longestStall)}`);
  process.exitCode = report.passed ? 0 : 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
