"""`folder:/path` for audio: every WAV file under a directory, in sorted order."""
import pathlib

from zoo.data.audio_io import read_wav

OTHER_AUDIO = (".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac")


def find_audio(root: str) -> list[pathlib.Path]:
  root_path = pathlib.Path(root)
  if not root_path.is_dir():
    raise FileNotFoundError(f"audio folder not found: {root}")
  files = sorted(p for p in root_path.rglob("*") if p.suffix.lower() == ".wav")
  if not files:
    others = sorted({p.suffix.lower() for p in root_path.rglob("*")
                     if p.suffix.lower() in OTHER_AUDIO})
    hint = (f"; it holds {', '.join(others)} files, which are not read: convert them to WAV"
            if others else "")
    raise ValueError(f"no .wav files under {root}{hint}")
  return files


class AudioFolder:
  """Random-access source of (float32 [T, C], rate) from the WAV files under `root`."""

  def __init__(self, root: str):
    self.files = find_audio(root)

  def __len__(self):
    return len(self.files)

  def __getitem__(self, index: int):
    return read_wav(self.files[index])
