/** memcached's -l syntax: lists, host:port, [v6]:port, notls: (unit test of lib/listeners.ts). */
import t from 'tap';
import { ListenerError, parseListeners } from '../lib/listeners.js';

t.test('parseListeners', async (t) => {
  t.same(parseListeners(undefined, 11211, false), [{ host: undefined, port: 11211, tls: false }], 'no -l: every interface, -p');
  t.same(parseListeners('127.0.0.1', 11211, true), [{ host: '127.0.0.1', port: 11211, tls: true }]);
  t.same(parseListeners('127.0.0.1:11300,notls:10.0.0.1', 11211, true), [
    { host: '127.0.0.1', port: 11300, tls: true },
    { host: '10.0.0.1', port: 11211, tls: false },
  ], 'a list, a port of its own, a plaintext one');
  t.same(parseListeners('[::1]:11400,::1', 11211, false), [
    { host: '::1', port: 11400, tls: false },
    { host: '::1', port: 11211, tls: false },
  ], 'IPv6 with and without a port');
  t.same(parseListeners('127.0.0.1,127.0.0.1', 1, false).length, 1, 'a repeated interface once');
  t.same(parseListeners(':11500', 1, false), [{ host: undefined, port: 11500, tls: false }], ':port = every interface');
  const error = (f: () => unknown): string => {
    try {
      f();
      return 'no error';
    } catch (err) {
      return err instanceof ListenerError ? err.message : `not a ListenerError: ${String(err)}`;
    }
  };
  t.equal(error(() => parseListeners('127.0.0.1:x', 1, false)), "bad port 'x' in '127.0.0.1:x'");
  t.equal(error(() => parseListeners('127.0.0.1:70000', 1, false)), "bad port '70000' in '127.0.0.1:70000'");
  t.equal(error(() => parseListeners(',', 1, false)), "no interface in ','");
  t.equal(error(() => parseListeners('notls:127.0.0.1', 1, false)), "'notls' option is valid only when SSL is enabled", 'as memcached');
});
