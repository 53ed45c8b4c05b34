import { validatePluginInfo } from './app-settings.js';
import { parseFrameList } from './frames.js';
import {
  AUX_FILES_VARIABLE,
  jobSubmissionSchema,
  LOG_DIRECTORY_VARIABLE,
  type JobSubmission,
} from './job-spec.js';
import { parseInput } from './validate.js';

/**
 * Everything a submission must pass before the store sees it: the job schema (defaults
 * applied), the application plugin's settings and the frame list. Used by the HTTP API and
 * by event plugins that submit jobs of their own.
 */
export function prepareSubmission(input: unknown): { submission: JobSubmission; frames: number[] } {
  const submission = parseInput(jobSubmissionSchema, input);
  submission.pluginInfo = validatePluginInfo(
    submission.plugin,
    submission.pluginInfo,
  ) as JobSubmission['pluginInfo'];
  // The log folder travels in the environment (a `DROVER_…` name no submission may set):
  // the store keeps, and path mapping maps, the environment of every job already.
  if (submission.logDirectory !== undefined) {
    submission.environment = {
      ...submission.environment,
      [LOG_DIRECTORY_VARIABLE]: submission.logDirectory,
    };
    delete submission.logDirectory;
  }
  // Auxiliary files travel the same way (the manager checked the references exist).
  if (submission.auxFiles !== undefined) {
    if (submission.auxFiles.length > 0) {
      submission.environment = {
        ...submission.environment,
        [AUX_FILES_VARIABLE]: JSON.stringify(submission.auxFiles),
      };
    }
    delete submission.auxFiles;
  }
  return { submission, frames: parseFrameList(submission.frames, 'frames') };
}
