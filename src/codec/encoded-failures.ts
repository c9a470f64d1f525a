/**
 * The failure converter of encrypted deployments: error messages and stack traces travel as an encoded payload
 * (`encodeCommonAttributes`), so the payload codec encrypts them like inputs and results. An activity's message
 * names files ("The input payroll/q3.csv does not exist"); without this it would sit in the history in clear.
 * Loaded by path (`failureConverterPath`) because workflow code converts failures inside the sandbox too.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
