/**
 * Describing a file that does not parse without quoting it: V8's JSON errors carry the text around the fault (from
 * Node 21 on, `"root:x:0:0:"... is not valid JSON`), and a job's error message ends up in the workflow history, the
 * CLI and the API, where the contents of a file that is not what the job expected must never appear.
 */

/** Where a JSON syntax error is ("a syntax error at line 3, column 7"), never what the text there is. */
export function jsonSyntaxPlace(err: unknown, text: string): string {
  const message = err instanceof Error ? err.message : '';
  const position = /position (\d+)/.exec(message)?.[1];
  if (position === undefined) {
    return /unexpected end/i.test(message) ? 'it ends before the JSON does' : 'a syntax error';
  }
  const before = text.slice(0, Number(position));
  const line = before.split('\n').length;
  const column = Number(position) - before.lastIndexOf('\n');
  return `a syntax error at line ${line}, column ${column}`;
}
