/**
 * Serving thread entry point (piscina task): start serving, then stay alive on the sockets and
 * the main thread's port after the task has returned.
 */
import type { ThreadInit } from '../lib/threads/messages.js';
import { ServingThread } from '../lib/threads/serving-thread.js';

export default async function serve(init: ThreadInit): Promise<string> {
  await new ServingThread(init).start();
  return 'ready';
}
