/**
 * Per-recipient templates in Mustache syntax: `{{name}}` takes the recipient's `name`. HTML bodies escape the
 * values; text bodies and subjects use them as they are. A template that names a variable the recipients do not
 * have fails the job before the first message, rather than sending thousands of messages with a hole in them.
 */
import { ApplicationFailure } from '@temporalio/activity';
import Mustache from 'mustache';

type Token = [string, string, number, number, Token[]?, ...unknown[]];

/** The variable names a template uses. */
export function templateVariables(template: string): string[] {
  const names = new Set<string>();
  const walk = (tokens: Token[]) => {
    for (const token of tokens) {
      if (['name', '&', '#', '^'].includes(token[0])) names.add(token[1]);
      if (token[4]) walk(token[4]);
    }
  };
  try {
    walk(Mustache.parse(template) as Token[]);
  } catch (err) {
    throw ApplicationFailure.nonRetryable(`The template is not valid: ${(err as Error).message}`, 'TemplateInvalid');
  }
  return [...names];
}

/** Fails when a template uses a variable that is not among `columns`. */
export function checkTemplateVariables(templates: { what: string; text: string }[], columns: string[]): void {
  const missing = templates.flatMap(({ what, text }) =>
    templateVariables(text)
      .filter((name) => !columns.includes(name.split('.')[0] ?? name))
      .map((name) => `{{${name}}} in the ${what}`),
  );
  if (missing.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `The recipients have no value for ${missing.join(', ')} (their columns: ${columns.join(', ')}). ` +
        'Add the column to the recipients file or fix the template.',
      'TemplateVariableMissing',
    );
  }
}

/** Renders a template for one recipient. */
export function renderTemplate(template: string, vars: Record<string, string>, format: 'text' | 'html'): string {
  return Mustache.render(template, vars, {}, format === 'html' ? {} : { escape: (value: string) => value });
}
