// Example rule module in JavaScript: Smart Action results in Kustomer.
//
// - A completed Smart Action (verification, photo, payment…) adds a note
//   with its results to the session's conversation and attaches its files.
// - A failed one adds a note with the reason, unless the customer's side
//   caused it (e.g. fingerprint not enabled on the phone): then it is skipped.
// - Every other event is skipped; status changes are ignored.
import log from 'log';

function skip(reason) {
  return { actions: [{ tag: 'skip', val: reason }] };
}

export function onSessionEvent(event, ctx) {
  const { tag, val } = event.kind;
  if (tag !== 'smart-action-completed' && tag !== 'smart-action-failed') {
    return skip('this module only handles Smart Actions');
  }
  if (ctx.linkedConversation === undefined) {
    return skip('the session has no conversation');
  }
  if (tag === 'smart-action-failed') {
    if (val.causedByCustomer) {
      return skip(`${val.name} failed on the customer's side`);
    }
    log('warn', `${val.name} failed on ${event.session.id}`);
    return { actions: [{ tag: 'add-note', val: `Smart Action ${val.name} failed: ${val.message}` }] };
  }
  const results = val.results.map(([key, value]) => `${key}: ${value}`).join('\n');
  const note = results === '' ? `Smart Action ${val.name} completed` : `Smart Action ${val.name} completed\n${results}`;
  const actions = [{ tag: 'add-note', val: note }];
  for (const file of val.files) {
    actions.push({ tag: 'attach-file', val: { file, note: `From Smart Action ${val.name}` } });
  }
  return { actions };
}

export function onStatusChange(change, ctx) {
  return { tag: 'ignore', val: 'this module leaves status sync alone' };
}
