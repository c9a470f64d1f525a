/**
 * `backroom`: start, watch and steer Backroom jobs from a terminal. Every command talks to Temporal through the
 * jobs API, so what it shows is what the Temporal UI and the `temporal` CLI show.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { Command, Option } from 'commander';
import { z } from 'zod';
import { JOB_CATALOG, type JobDefinition } from '../shared/job-catalog';
import { JOB_STATES, type JobState } from '../shared/job-status';
import { rootCause } from '../shared/failures';
import { PRIORITY_KEYS, type PriorityName } from '../shared/names';
import { mailSinkDir } from '../config';
import { readMailbox } from '../mail-sink/mailbox';
import { formatList, formatMailbox, formatStatus } from './format';
import {
  JobAlreadyRunningError,
  JobEndedError,
  JobInputError,
  JobNotFoundError,
  Jobs,
  UnknownJobTypeError,
} from './jobs';
import { exitCodeFor, watchJob } from './watch-view';

/** Errors users can fix, shown without a stack trace, and their exit code. */
class UsageError extends Error {}

function kebabToCamel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** A flag's value: JSON when it parses (numbers, booleans, arrays), else the plain string. */
function parseFlagValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** Turns `--duration-seconds 30 --message hi` into `{ durationSeconds: 30, message: 'hi' }`. */
export function fieldsFromFlags(args: string[]): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (!arg.startsWith('--')) throw new UsageError(`Unexpected argument "${arg}": input fields are --name value`);
    const [flag, inline] = arg.slice(2).split(/=(.*)/s, 2);
    const value = inline ?? args[++i];
    if (value === undefined) throw new UsageError(`--${flag} needs a value`);
    fields[kebabToCamel(flag ?? '')] = parseFlagValue(value);
  }
  return fields;
}

function parseInputJson(raw: string | undefined): Record<string, unknown> {
  if (raw === undefined) return {};
  try {
    const value: unknown = JSON.parse(raw);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`--input must be a JSON object, e.g. '{"message":"hi"}' (${(err as Error).message})`);
  }
}

/** How long `backroom start` waits for one try before it asks again (a busy cluster answers well within this). */
const START_TRY_TIMEOUT_MS = 15_000;

let jobsPromise: Promise<Jobs> | undefined;
const jobs = () => (jobsPromise ??= Jobs.connect());

function describeJobTypes(): string {
  const blocks = Object.entries(JOB_CATALOG).map(([type, definition]) => {
    const def: JobDefinition = definition;
    const schema = z.toJSONSchema(def.schema, { io: 'input' }) as {
      properties?: Record<
        string,
        { type?: string; enum?: unknown[]; default?: unknown; minimum?: number; maximum?: number }
      >;
    };
    const fields = Object.entries(schema.properties ?? {}).map(([name, prop]) => {
      const kind = prop.enum ? prop.enum.map((v) => JSON.stringify(v)).join(' | ') : (prop.type ?? 'any');
      const range =
        prop.minimum !== undefined || prop.maximum !== undefined
          ? ` [${prop.minimum ?? ''}..${prop.maximum ?? ''}]`
          : '';
      const fallback = prop.default !== undefined ? ` = ${JSON.stringify(prop.default)}` : '';
      const renamed = def.renamedFields?.[name];
      return `    ${name}: ${kind}${range}${fallback}${renamed ? ` (deprecated: use ${renamed})` : ''}`;
    });
    return [
      `${type}  ${def.summary}`,
      ...fields,
      `    example: backroom start ${type} --input '${JSON.stringify(def.example)}'`,
    ].join('\n');
  });
  return blocks.join('\n\n');
}

export function buildProgram(): Command {
  const program = new Command('backroom')
    .description('Start, watch and steer Backroom jobs on Temporal')
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('job-types')
    // The old name of the command, for scripts written before it was renamed.
    .alias('workflows')
    .description('list the job types and their inputs')
    .action(() => console.log(describeJobTypes()));

  program
    .command('start')
    .description('start a job: input as --input JSON and/or one --field value per input field')
    .argument('<type>', 'job type (see `backroom job-types`)')
    .option('--input <json>', 'job input as a JSON object')
    .option('--id <id>', 'workflow id (default: <type prefix>-<time>-<random>)')
    .addOption(
      new Option('--priority <level>', 'task priority: a backlog is served high first, then default, then low')
        .choices(Object.keys(PRIORITY_KEYS))
        .default('default'),
    )
    .option('--tenant <name>', "who the job works for: tenants share the workers fairly (Temporal's fairness key)")
    .option('--tenant-weight <weight>', "the tenant's share relative to others (0.001-1000, default 1)", parseFloat)
    .option('--watch', 'show a live progress bar until the job ends')
    .option('--json', 'print the started job as JSON')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(
      async (
        type: string,
        options: {
          input?: string;
          id?: string;
          priority: PriorityName;
          tenant?: string;
          tenantWeight?: number;
          watch?: boolean;
          json?: boolean;
        },
        command: Command,
      ) => {
        const extra = command.args.slice(1);
        const input = { ...parseInputJson(options.input), ...fieldsFromFlags(extra) };
        const client = await jobs();
        // The id is chosen once: a try that Temporal does not answer in time is followed by one for the same
        // job, which finds it if the first took effect, so a retried start never makes two jobs.
        const started = await client.start(type, input, {
          ...(options.id && { id: options.id }),
          priority: options.priority,
          ...(options.tenant !== undefined && { tenant: options.tenant }),
          ...(options.tenantWeight !== undefined && { tenantWeight: options.tenantWeight }),
          attempts: 3,
          attemptTimeoutMs: START_TRY_TIMEOUT_MS,
        });
        if (options.json) console.log(JSON.stringify(started));
        else console.log(`Started ${started.type} as ${started.id}`);
        // On stderr, so that --json output stays one JSON document (it has them as `warnings` too).
        for (const warning of started.warnings ?? []) console.error(`Warning: ${warning}`);
        if (options.watch) {
          const final = await watchJob(client, started.id);
          console.log(formatStatus(final));
          process.exitCode = exitCodeFor(final);
        }
      },
    );

  program
    .command('generate-pages')
    .description('generate sample document pages: clean/ references and degraded/ inputs (the generateSamplePages job)')
    .option('--output-dir <dir>', 'inside the data dir', 'samples')
    .option('--count <n>', 'how many pages', '12')
    .option('--seed <n>', 'the same seed gives the same pages', '1')
    .option('--no-watch', 'return once the job has started')
    .action(async (options: { outputDir: string; count: string; seed: string; watch: boolean }) => {
      const client = await jobs();
      const input = { outputDir: options.outputDir, count: Number(options.count), seed: Number(options.seed) };
      const started = await client.start('generateSamplePages', input);
      console.log(`Started generateSamplePages as ${started.id}`);
      if (!options.watch) return;
      const final = await watchJob(client, started.id);
      console.log(formatStatus(final));
      process.exitCode = exitCodeFor(final);
    });

  program
    .command('status')
    .description("show a job's status (query + live heartbeat details)")
    .argument('<id>')
    .option('--json', 'print as JSON')
    .action(async (id: string, options: { json?: boolean }) => {
      const view = await (await jobs()).status(id);
      console.log(options.json ? JSON.stringify(view, null, 2) : formatStatus(view));
    });

  program
    .command('watch')
    .description('live progress until the job ends; exit code 0 completed, 1 failed, 3 cancelled')
    .argument('<id>')
    .action(async (id: string) => {
      const final = await watchJob(await jobs(), id);
      console.log(formatStatus(final));
      process.exitCode = exitCodeFor(final);
    });

  for (const [name, description] of [
    ['pause', 'hold the job at its next safe point (a running activity stops and keeps its checkpoint)'],
    ['resume', 'continue a paused job from where it stopped'],
  ] as const) {
    program
      .command(name)
      .description(description)
      .argument('<id>')
      .action(async (id: string) => {
        await (await jobs())[name](id);
        console.log(`Sent ${name} to ${id}`);
      });
  }

  program
    .command('cancel')
    .description('stop gracefully and return a partial result; --hard uses Temporal cancellation instead')
    .argument('<id>')
    .option('--hard', "Temporal's own cancel: the run ends as Canceled after cleanup")
    .action(async (id: string, options: { hard?: boolean }) => {
      await (await jobs()).cancel(id, { hard: Boolean(options.hard) });
      console.log(`Sent ${options.hard ? 'Temporal cancellation' : 'cancel'} to ${id}`);
    });

  program
    .command('result')
    .description('wait for the job to end and print its result as JSON; a failed job prints why (exit 1)')
    .argument('<id>')
    .action(async (id: string) => {
      try {
        console.log(JSON.stringify(await (await jobs()).result(id), null, 2));
      } catch (err) {
        if (!(err instanceof WorkflowFailedError)) throw err;
        // The root cause, not Temporal's "Workflow execution failed" / "Activity task failed" wrappers.
        const cause = rootCause(err);
        const cancelled = cause.type === 'CancelledFailure';
        console.error(`backroom: job ${id} ${cancelled ? 'was cancelled' : 'failed'}: ${cause.type}: ${cause.message}`);
        process.exitCode = cancelled ? 3 : 1;
      }
    });

  program
    .command('list')
    .description('recent jobs, newest first')
    .addOption(new Option('--state <state>', 'only jobs in this state').choices(JOB_STATES as string[]))
    .option('--type <type>', 'only jobs of this type')
    .option('--limit <n>', 'how many', (v) => Number.parseInt(v, 10), 20)
    .option('--json', 'print as JSON')
    .action(async (options: { state?: JobState; type?: string; limit: number; json?: boolean }) => {
      const entries = await (await jobs()).list(options);
      console.log(options.json ? JSON.stringify(entries, null, 2) : formatList(entries));
    });

  program
    .command('mail')
    .description('messages the local mail sink received (npm start and npm run mail-sink run it), newest first')
    .option('--dir <dir>', "the sink's folder", mailSinkDir())
    .option('--campaign <id>', 'only messages of this campaign')
    .option('--to <address>', 'only messages to this address')
    .option('--limit <n>', 'how many (0 for all)', (v) => Number.parseInt(v, 10), 20)
    .option('--json', 'print as JSON')
    .action(async (options: { dir: string; campaign?: string; to?: string; limit: number; json?: boolean }) => {
      const all = await readMailbox(options.dir);
      const matching = all.filter(
        (m) =>
          (!options.campaign || m.messageId.startsWith(`<${options.campaign}.`)) &&
          (!options.to || m.to.some((to) => to.toLowerCase() === options.to?.toLowerCase())),
      );
      const shown = matching.reverse().slice(0, options.limit > 0 ? options.limit : undefined);
      if (options.json) return console.log(JSON.stringify(shown, null, 2));
      console.log(formatMailbox(shown, matching.length, options.dir));
    });

  return program;
}

/** Runs the CLI; user errors print one clear message and exit 2 (not a stack trace). */
export async function main(argv = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    const known = [
      UsageError,
      JobInputError,
      UnknownJobTypeError,
      JobAlreadyRunningError,
      JobNotFoundError,
      JobEndedError,
    ];
    if (known.some((type) => err instanceof type)) {
      console.error(`backroom: ${(err as Error).message}`);
      process.exitCode = 2;
    } else {
      console.error(`backroom: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    }
  } finally {
    if (jobsPromise) await (await jobsPromise.catch(() => undefined))?.client.connection.close();
  }
}

if (require.main === module) void main();
