import t from 'tap';
import { parseWebhook } from '../src/webhooks.js';

t.test('the kind comes from a prefix, else from the host, else json', async (t) => {
  const kind = (entry: string) => {
    const p = parseWebhook(entry);
    return p.ok ? p.webhook.kind : p.reason;
  };
  t.equal(kind('https://hooks.slack.com/services/T/B/X'), 'slack');
  t.equal(kind('https://discord.com/api/webhooks/1/tok'), 'discord');
  t.equal(kind('https://discord.com/not-a-webhook'), 'json');
  t.equal(kind('https://ntfy.sh/my-topic'), 'ntfy');
  t.equal(kind('ntfy:http://10.0.0.2:8080/valet'), 'ntfy');
  t.equal(kind('SLACK:https://relay.example/x'), 'slack');
  t.equal(kind('https://ci.example.org/hook'), 'json');
  t.match(kind('ntfy:https://ntfy.example/'), /names its topic/);
  t.match(kind('file:///etc/passwd'), /the scheme is file, not http or https/);
  t.match(kind('not a url'), /not a URL/);
});

t.test('what logs show has no userinfo, query or (for Slack and Discord) secret path', async (t) => {
  const shown = (entry: string) => {
    const p = parseWebhook(entry);
    return p.ok ? p.webhook.shown : p.reason;
  };
  t.equal(shown('https://user:pw@ci.example.org/hook?token=s3cret#x'), 'https://***@ci.example.org/hook?…');
  t.equal(shown('https://hooks.slack.com/services/T/B/SECRET'), 'https://hooks.slack.com/…');
  t.equal(shown('https://discord.com/api/webhooks/1/SECRET'), 'https://discord.com/…');
  t.equal(shown('ntfy:https://ntfy.example:8443/valet'), 'https://ntfy.example:8443/valet');
});
