"""The errors of stack templates: a template or manifest that cannot be used, a bad render."""


class TemplateError(Exception):
    """A template or manifest that cannot be used; the message names the template and why."""


class RenderError(TemplateError):
    """Rendering produced something other than what the manifest describes."""
