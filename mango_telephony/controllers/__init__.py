from . import main
from . import recording
