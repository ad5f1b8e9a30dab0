"""{{name}}: a Switchboard rule module in Python.

One decision: a voicemail becomes a new, high-priority Kustomer conversation
tagged `voicemail`, with the recording attached; every other session event is
skipped. Status changes are mapped through the tenant's status maps.
"""
import wit_world
from wit_world import log
from wit_world.imports import types as t
from componentize_py_types import Err

# Kustomer priority of a voicemail's conversation (1 lowest, 5 highest).
VOICEMAIL_PRIORITY = 4


class WitWorld(wit_world.WitWorld):
    def on_session_event(self, event: t.SessionEvent, ctx: t.Context) -> t.Plan:
        if not isinstance(event.kind, t.EventKind_VoicemailLeft):
            return t.Plan([t.Action_Skip("this module only handles voicemails")])
        user = event.session.end_user
        actions: list[t.Action] = []
        if ctx.customer is None:
            if user.phone is None and user.sdk_identifier is None:
                # A rule error is recorded with the event; nothing is written.
                raise Err(t.RuleError("anonymous", "a voicemail without a caller"))
            actions.append(t.Action_CreateCustomer(t.NewCustomer(
                name=user.name, phone=user.phone, external_id=user.sdk_identifier,
                email=user.email, fields=[])))
        actions.append(t.Action_CreateConversation(t.NewConversation(
            name="Voicemail from " + (user.phone or user.name or "an unknown caller"),
            channel=t.Channel.VOICE, direction=t.Direction.INBOUND,
            priority=VOICEMAIL_PRIORITY, voicemail=True,
            menu_selection=event.session.menu.path if event.session.menu else None,
            status=t.ConversationStatus.OPEN, tags=["voicemail"], fields=[],
            assign_to=None)))
        recording = event.kind.value.recording
        if recording is not None and ctx.settings.recording_enabled:
            actions.append(t.Action_AttachFile(t.Attachment(recording, None)))
        log(t.LogLevel.INFO, "voicemail of " + event.session.id)
        return t.Plan(actions)

    def on_status_change(self, change: t.StatusChange, ctx: t.StatusContext) -> t.StatusDecision:
        if change.source == t.System.KUSTOMER:
            maps, target = ctx.kustomer_to_ccai, t.System.CCAI
        else:
            maps, target = ctx.ccai_to_kustomer, t.System.KUSTOMER
        for entry in maps:
            if entry.from_ == change.status:
                return t.StatusDecision_Apply(t.StatusTarget(target, entry.to))
        return t.StatusDecision_Ignore("no mapping for " + change.status)
