"""One exception tree; the CLI maps each class to a one-line message and an exit code."""


class MailflowError(Exception):
    """Base of every error mailflow reports to a user."""

    exit_code = 1


class ConfigError(MailflowError):
    """A project, config, rule, engagement or template file is missing or malformed."""

    exit_code = 2


class NoProjectError(ConfigError):
    """No project here: no mailflow.toml in the folder given or in any parent folder."""

    exit_code = 66  # EX_NOINPUT: not a broken file, there is no file at all


class NotFoundError(MailflowError):
    """An engagement, draft, message or reply id that does not exist."""

    exit_code = 3


class StateError(MailflowError):
    """An operation that the record's current state does not allow."""

    exit_code = 4


class LockedError(MailflowError):
    """Another mailflow process holds the project's write lock."""

    exit_code = 75  # EX_TEMPFAIL: cron may simply try again next time


class StoreError(MailflowError):
    """The state database is unreadable or could not be written."""

    exit_code = 5


class TransportError(MailflowError):
    """An SMTP or IMAP server could not be reached, refused the login, or misbehaved."""

    exit_code = 6


class SecretError(MailflowError):
    """A password or token could not be obtained from its environment variable or command."""

    exit_code = 6


class RenderError(MailflowError):
    """A template could not be rendered for an engagement (e.g. a missing variable)."""

    exit_code = 7


# a command line that cannot be parsed (unknown option, missing argument): click's own
# UsageError is turned into this code in the CLI, apart from 2 (a bad config file)
USAGE_EXIT_CODE = 64  # EX_USAGE


class CommandLineError(MailflowError):
    """A value on the command line (or in its environment variable) that cannot be read."""

    exit_code = USAGE_EXIT_CODE


class RunFailed(MailflowError):
    """A tick finished but something in it failed; the details were already reported."""

    exit_code = 1


class DependencyError(MailflowError):
    """An optional library a command needs (e.g. WeasyPrint for PDF) is not installed."""

    exit_code = 1
