"""Example rule module in Python: customer ratings (CSAT) in Kustomer.

- A rating adds a note "CSAT n/5" (with the comment) to the session's
  conversation and writes the score and comment into the standard CSAT
  fields when the tenant has them provisioned.
- A rating of 2 or less reopens a conversation that is already done, so an
  agent follows up.
- Every other event is skipped; status changes are ignored.
"""
import wit_world
from wit_world import log
from wit_world.imports import types as t

# Ratings at or below this reopen the conversation.
FOLLOW_UP_AT = 2


def field(ctx: t.Context, which: t.StandardField):
    """The Kustomer attribute of a provisioned standard field, or None."""
    for entry in ctx.settings.fields:
        if entry.field == which:
            return entry.name
    return None


class WitWorld(wit_world.WitWorld):
    def on_session_event(self, event: t.SessionEvent, ctx: t.Context) -> t.Plan:
        if not isinstance(event.kind, t.EventKind_Rated):
            return t.Plan([t.Action_Skip("this module only handles ratings")])
        conversation = ctx.linked_conversation
        if conversation is None:
            return t.Plan([t.Action_Skip("the rated session has no conversation")])
        rating = event.kind.value
        note = f"CSAT {rating.score}/5"
        if rating.comment:
            note += f": {rating.comment}"
        actions: list[t.Action] = [t.Action_AddNote(note)]
        fields = []
        score_field = field(ctx, t.StandardField.CSAT_RATING)
        if score_field is not None:
            fields.append(t.CustomField(score_field, t.FieldValue_Number(float(rating.score))))
        comment_field = field(ctx, t.StandardField.CSAT_COMMENT)
        if comment_field is not None and rating.comment:
            fields.append(t.CustomField(comment_field, t.FieldValue_Text(rating.comment)))
        if fields:
            actions.append(t.Action_SetFields(fields))
        if rating.score <= FOLLOW_UP_AT and conversation.status == t.ConversationStatus.DONE:
            log(t.LogLevel.INFO, f"low rating on {event.session.id}: reopening")
            actions.append(t.Action_SetStatus(t.ConversationStatus.OPEN))
        return t.Plan(actions)

    def on_status_change(self, change: t.StatusChange, ctx: t.StatusContext) -> t.StatusDecision:
        return t.StatusDecision_Ignore("this module leaves status sync alone")
