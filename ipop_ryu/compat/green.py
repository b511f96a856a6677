"""eventlet, started the way a controller we own should start: quietly, and before any lock.

Both frameworks run their hub on eventlet's green threads (the app is written for them).
- `eventlet.monkey_patch()` swaps threading's locks for green ones. An RLock made before it is
  converted only when eventlet finds it through a module's globals; otherwise eventlet logs
  "N RLock(s) were not greened" (under Ryu 4.34: pyparsing's class-level packrat lock and a
  logging handler's, made while the framework is imported). So `ipop-ryu controller` patches
  everything, threads too, before it imports the framework (`patch_everything`); the managers
  (`ryu-manager`, `osken-manager`) patch threads only after reading their options.
- eventlet >= 0.37 warns on import that it is deprecated: advice to us, not to an operator
  (the frameworks, not ipop-ryu, are built on it), many lines at the head of every log.
  Silenced on purpose, by its message (its warning class is eventlet's own, not importable
  before eventlet is).
"""
import warnings

DEPRECATION_NOTICE = r"(?s).*Eventlet is deprecated"


def silence_deprecation_notice():
    warnings.filterwarnings("ignore", message=DEPRECATION_NOTICE)


def patch_everything():
    """What the managers' two calls (`patch(thread=False)`, later `patch(thread=True)`) do,
    in one, before the framework's imports make their locks."""
    silence_deprecation_notice()
    import eventlet
    eventlet.monkey_patch()
