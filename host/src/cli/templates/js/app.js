// {{name}}: a Switchboard rule module in JavaScript.
//
// One decision: a voicemail becomes a new, high-priority Kustomer
// conversation tagged `voicemail`, with the recording attached; every other
// session event is skipped. Status changes are mapped through the tenant's
// status maps.
//
// Types follow the WIT in wit/rules.wit: records are objects with camelCase
// fields, variants are { tag, val }, enums are their kebab-case names, an
// absent option is `undefined`.
import log from 'log';

// Kustomer priority of a voicemail's conversation (1 lowest, 5 highest).
const VOICEMAIL_PRIORITY = 4;

export function onSessionEvent(event, ctx) {
  if (event.kind.tag !== 'voicemail-left') {
    return { actions: [{ tag: 'skip', val: 'this module only handles voicemails' }] };
  }
  const user = event.session.endUser;
  const actions = [];
  if (ctx.customer === undefined) {
    if (user.phone === undefined && user.sdkIdentifier === undefined) {
      // A thrown rule error is recorded with the event; nothing is written.
      throw { code: 'anonymous', message: 'a voicemail without a caller' };
    }
    actions.push({
      tag: 'create-customer',
      val: { name: user.name, phone: user.phone, externalId: user.sdkIdentifier, email: user.email, fields: [] },
    });
  }
  actions.push({
    tag: 'create-conversation',
    val: {
      name: 'Voicemail from ' + (user.phone ?? user.name ?? 'an unknown caller'),
      channel: 'voice',
      direction: 'inbound',
      priority: VOICEMAIL_PRIORITY,
      voicemail: true,
      menuSelection: event.session.menu?.path,
      status: 'open',
      tags: ['voicemail'],
      fields: [],
      assignTo: undefined,
    },
  });
  const recording = event.kind.val.recording;
  if (recording !== undefined && ctx.settings.recordingEnabled) {
    actions.push({ tag: 'attach-file', val: { file: recording, note: undefined } });
  }
  log('info', 'voicemail of ' + event.session.id);
  return { actions };
}

export function onStatusChange(change, ctx) {
  const [maps, target] = change.source === 'kustomer'
    ? [ctx.kustomerToCcai, 'ccai']
    : [ctx.ccaiToKustomer, 'kustomer'];
  const entry = maps.find((m) => m.from === change.status);
  if (entry !== undefined) {
    return { tag: 'apply', val: { target, status: entry.to } };
  }
  return { tag: 'ignore', val: 'no mapping for ' + change.status };
}
