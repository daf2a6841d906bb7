//! A list that stores zero or one element inline and spills to a Vec
//! beyond that: most groups have one port and most ports one host, so this
//! saves a heap allocation per membership.

#[derive(Clone, Debug, Default)]
pub(crate) enum Small<T> {
    #[default]
    Empty,
    One(T),
    Many(Vec<T>),
}

impl<T> Small<T> {
    pub fn as_slice(&self) -> &[T] {
        match self {
            Small::Empty => &[],
            Small::One(t) => core::slice::from_ref(t),
            Small::Many(v) => v,
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            Small::Empty => &mut [],
            Small::One(t) => core::slice::from_mut(t),
            Small::Many(v) => v,
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> core::slice::Iter<'_, T> {
        self.as_slice().iter()
    }

    pub fn iter_mut(&mut self) -> core::slice::IterMut<'_, T> {
        self.as_mut_slice().iter_mut()
    }

    /// Append and return a reference to the new element.
    pub fn push(&mut self, t: T) -> &mut T {
        *self = match core::mem::take(self) {
            Small::Empty => Small::One(t),
            Small::One(a) => Small::Many(vec![a, t]),
            Small::Many(mut v) => {
                v.push(t);
                Small::Many(v)
            }
        };
        let s = self.as_mut_slice();
        let last = s.len() - 1;
        &mut s[last]
    }

    /// Keep the elements for which `keep` is true; returns how many went.
    pub fn retain(&mut self, mut keep: impl FnMut(&mut T) -> bool) -> usize {
        let before = self.len();
        *self = match core::mem::take(self) {
            Small::Empty => Small::Empty,
            Small::One(mut a) => {
                if keep(&mut a) {
                    Small::One(a)
                } else {
                    Small::Empty
                }
            }
            Small::Many(mut v) => {
                v.retain_mut(|t| keep(t));
                match v.len() {
                    0 => Small::Empty,
                    1 => v.pop().map_or(Small::Empty, Small::One),
                    _ => Small::Many(v),
                }
            }
        };
        before - self.len()
    }

    pub fn find_mut(&mut self, mut pred: impl FnMut(&T) -> bool) -> Option<&mut T> {
        self.iter_mut().find(|t| pred(t))
    }

    pub fn clear(&mut self) {
        *self = Small::Empty;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_retain() {
        let mut s: Small<u32> = Small::Empty;
        assert!(s.is_empty());
        *s.push(1) += 10;
        assert_eq!(s.as_slice(), &[11]);
        s.push(2);
        s.push(3);
        assert_eq!(s.as_slice(), &[11, 2, 3]);
        assert_eq!(s.retain(|x| *x != 2), 1);
        assert_eq!(s.retain(|x| *x != 11), 1);
        assert!(matches!(s, Small::One(3)));
        assert_eq!(s.retain(|_| false), 1);
        assert!(matches!(s, Small::Empty));
    }
}
