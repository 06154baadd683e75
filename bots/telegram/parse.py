"""Telegram ``Update`` → a person's ``Inbound``, a block/unblock, or nothing to act on."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import CallbackQuery, Chat, ChatMember, Message, MessageEntity, Update, User
from telegram import Location as TgLocation

from conversations.incoming import (
    Command,
    Inbound,
    Incoming,
    Location,
    Photo,
    Picked,
    Text,
    Unsupported,
)

__all__ = [
    "CHANNEL",
    "NOT_PEOPLE",
    "FromPerson",
    "Ignored",
    "Membership",
    "Parsed",
    "is_person",
    "parse_update",
]

CHANNEL = "telegram"
# The anonymous group admin (GroupAnonymousBot) and Telegram's service account: never people.
NOT_PEOPLE = frozenset({1087968824, 777000})
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"})
# Message attributes that carry something we cannot take, in the order we check them.
_UNSUPPORTED = (
    "sticker",
    "voice",
    "audio",
    "video",
    "video_note",
    "animation",
    "document",
    "contact",
    "poll",
    "dice",
    "game",
    "story",
    "invoice",
    "checklist",
    "paid_media",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FromPerson:
    """A person wrote or pressed a button in a private chat with the bot."""

    inbound: Inbound
    callback_id: str | None = None  # a button press to answer (answerCallbackQuery)
    edit_ref: str | None = None  # the bot message the pressed button belongs to


@dataclass(frozen=True, slots=True, kw_only=True)
class Membership:
    """A person blocked (``reachable=False``) or unblocked the bot."""

    address: str
    reachable: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Ignored:
    """Nothing for the conversation. ``notice_to``: a chat that deserves a polite word."""

    reason: str
    notice_to: str | None = None
    locale: str | None = None
    callback_id: str | None = None
    group: bool = False


Parsed = FromPerson | Membership | Ignored


def is_person(user: User | None) -> bool:
    """A real person: not a bot, not the anonymous admin, not Telegram's service account."""
    return user is not None and not user.is_bot and user.id not in NOT_PEOPLE


def parse_update(update: Update, *, bot_username: str | None = None) -> Parsed:
    """Classify one update. Pure: no I/O, no state."""
    if update.message is not None:
        return _message(update.message, bot_username)
    if update.callback_query is not None:
        return _callback(update.callback_query)
    if update.edited_message is not None:
        return _edited(update.edited_message)
    if update.my_chat_member is not None:
        member = update.my_chat_member
        if member.chat.type != Chat.PRIVATE or not is_person(member.from_user):
            return Ignored(reason="group_membership")
        status = member.new_chat_member.status
        reachable = status not in (ChatMember.BANNED, ChatMember.LEFT)
        return Membership(address=str(member.chat.id), reachable=reachable)
    if update.channel_post is not None or update.edited_channel_post is not None:
        return Ignored(reason="channel")
    return Ignored(reason="unsupported_update")


def _inbound(user: User, chat: Chat, payload: Incoming) -> Inbound:
    return Inbound(
        channel=CHANNEL,
        user_id=str(user.id),
        address=str(chat.id),
        payload=payload,
        locale=user.language_code,
        display_name=None,  # data minimisation: we never need a citizen's Telegram name
    )


def _message(message: Message, bot_username: str | None) -> Parsed:
    user = message.from_user
    if message.chat.type != Chat.PRIVATE:
        addressed = _addresses_bot(message, bot_username)
        return Ignored(
            reason="group",
            notice_to=str(message.chat.id) if addressed and is_person(user) else None,
            locale=user.language_code if user else None,
            group=True,
        )
    if not is_person(user) or message.sender_chat is not None:
        return Ignored(reason="not_a_person")
    assert user is not None
    return FromPerson(inbound=_inbound(user, message.chat, payload_of(message)))


def payload_of(message: Message) -> Incoming:
    """What a private message carries, as one typed value."""
    if message.text is not None:
        command = _command(message)
        return command if command is not None else Text(message.text)
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return Photo(ref=f"{CHANNEL}:{largest.file_id}", caption=message.caption)
    document = message.document
    if document is not None and (document.mime_type or "").lower() in _IMAGE_TYPES:
        return Photo(ref=f"{CHANNEL}:{document.file_id}", caption=message.caption)
    location: TgLocation | None = message.location or (
        message.venue.location if message.venue else None
    )
    if location is not None:
        return Location(latitude=location.latitude, longitude=location.longitude)
    for kind in _UNSUPPORTED:
        if getattr(message, kind, None):
            return Unsupported(kind)
    return Unsupported("other")


def _command(message: Message) -> Command | None:
    text = message.text or ""
    for entity in message.entities:
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            word = message.parse_entity(entity)
            name = word[1:].split("@", 1)[0].lower()
            if not name:
                return None
            rest = text.encode("utf-16-le")[entity.length * 2 :].decode("utf-16-le")
            return Command(name=name, arg=rest.strip())
    return None


def _addresses_bot(message: Message, bot_username: str | None) -> bool:
    """In a group: a /command, or a mention of our bot."""
    if not bot_username:
        return False
    handle = "@" + bot_username.lower()
    for entity in message.entities:
        word = message.parse_entity(entity).lower()
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            return "@" not in word or word.endswith(handle)
        if entity.type == MessageEntity.MENTION and word == handle:
            return True
    return False


def _callback(query: CallbackQuery) -> Parsed:
    message = query.message
    if not is_person(query.from_user):
        return Ignored(reason="not_a_person", callback_id=query.id)
    if message is None or message.chat.type != Chat.PRIVATE:
        return Ignored(reason="inline_or_group", callback_id=query.id)
    if not query.data:
        return Ignored(reason="no_data", callback_id=query.id)
    return FromPerson(
        inbound=_inbound(query.from_user, message.chat, Picked(query.data)),
        callback_id=query.id,
        edit_ref=str(message.message_id),
    )


def _edited(message: Message) -> Parsed:
    user = message.from_user
    if message.chat.type != Chat.PRIVATE or not is_person(user):
        return Ignored(reason="edited", group=message.chat.type != Chat.PRIVATE)
    assert user is not None
    # A live location's updates arrive as edits: nothing to say about those.
    if message.location is not None:
        return Ignored(reason="live_location")
    return Ignored(reason="edited", notice_to=str(message.chat.id), locale=user.language_code)
